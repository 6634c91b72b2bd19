// Strict decimal number parsing straight from the bytes of a CSV field, correctly rounded.
//
// Grammar (surrounding spaces and tabs allowed): [+-] digits [. digits] [(e|E) [+-] digits], with at
// least one digit before the exponent; ".5" and "5." are numbers. Anything else (empty, "NaN", "inf",
// "0x10", "1,5", "12abc") is not a number and yields NaN: the caller decides what a non-number means,
// it is never turned into 0.
//
// Speed: the common case (at most 15 significant digits and a decimal exponent within +-22) is computed
// exactly as one multiplication or division of two exactly representable doubles (Clinger's fast path),
// which IEEE 754 rounds correctly. Every other case falls back to Number() on the validated text, which
// is also correctly rounded. Either way the result is the double nearest the decimal value.

const POW10 = new Float64Array(23);
for (let i = 0, p = 1; i < POW10.length; i++, p *= 10) POW10[i] = p;

const PLUS = 43;
const MINUS = 45;
const DOT = 46;
const ZERO = 48;
const NINE = 57;
const SPACE = 32;
const TAB = 9;
const COMMA = 44;
const LF = 10;
const CR = 13;

export function parseDecimal(bytes: Uint8Array, start: number, end: number): number {
  let i = start;
  let e = end;
  while (i < e && (bytes[i] === SPACE || bytes[i] === TAB)) i++;
  while (e > i && (bytes[e - 1] === SPACE || bytes[e - 1] === TAB)) e--;
  if (i === e) return NaN;
  const textStart = i;

  let negative = false;
  let c = bytes[i];
  if (c === MINUS || c === PLUS) {
    negative = c === MINUS;
    i++;
  }
  let mantissa = 0;
  let significant = 0; // significant digits taken into the mantissa (leading zeros are not)
  let dropped = 0; // significant digits beyond what the mantissa holds exactly
  let exponent = 0;
  let digits = 0;
  for (; i < e; i++) {
    c = bytes[i];
    if (c < ZERO || c > NINE) break;
    digits++;
    if (significant < 15) {
      if (mantissa !== 0 || c !== ZERO) {
        mantissa = mantissa * 10 + (c - ZERO);
        significant++;
      }
    } else {
      dropped++;
      exponent++;
    }
  }
  if (i < e && bytes[i] === DOT) {
    i++;
    for (; i < e; i++) {
      c = bytes[i];
      if (c < ZERO || c > NINE) break;
      digits++;
      if (significant < 15) {
        if (mantissa !== 0 || c !== ZERO) {
          mantissa = mantissa * 10 + (c - ZERO);
          significant++;
        }
        exponent--;
      } else {
        dropped++;
      }
    }
  }
  if (digits === 0) return NaN;
  if (i < e && (bytes[i] === 101 || bytes[i] === 69)) {
    i++;
    let expNegative = false;
    if (i < e && (bytes[i] === MINUS || bytes[i] === PLUS)) {
      expNegative = bytes[i] === MINUS;
      i++;
    }
    let expValue = 0;
    let expDigits = 0;
    for (; i < e; i++) {
      c = bytes[i];
      if (c < ZERO || c > NINE) break;
      expDigits++;
      if (expValue < 100000) expValue = expValue * 10 + (c - ZERO);
    }
    if (expDigits === 0) return NaN;
    exponent += expNegative ? -expValue : expValue;
  }
  if (i !== e) return NaN;

  if (mantissa === 0) return negative ? -0 : 0;
  if (dropped === 0 && exponent >= -22 && exponent <= 22) {
    const value = exponent < 0 ? mantissa / POW10[-exponent] : mantissa * POW10[exponent];
    return negative ? -value : value;
  }
  const value = Number(latin1(bytes, textStart, e));
  return Number.isFinite(value) ? value : NaN; // "1e400" is not a feature value
}

function latin1(bytes: Uint8Array, start: number, end: number): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start).toString('latin1');
}

/** The same grammar for a JavaScript string (a quoted or unescaped field). */
export function parseDecimalString(text: string): number {
  return parseDecimal(Buffer.from(text, 'utf8'), 0, Buffer.byteLength(text, 'utf8'));
}

/** Where the last scanDecimal stopped: the field's end (a delimiter, a line break, or the limit). */
export const scanned = { end: 0 };

/**
 * parseDecimal fused with finding the end of an unquoted field: reads from `start` until the
 * delimiter (a comma unless given), CR or LF (or `limit`), stores that position in `scanned.end`, and
 * returns the field's number (NaN if it is not one). The plain case (sign, up to 15 digits, optional fraction, no spaces or exponent)
 * is parsed as it is scanned; anything else is handed to parseDecimal, so the two always agree.
 */
export function scanDecimal(bytes: Uint8Array, start: number, limit: number, delimiter = COMMA): number {
  let i = start;
  let negative = false;
  if (i < limit && bytes[i] === MINUS) {
    negative = true;
    i++;
  }
  let mantissa = 0;
  let digits = 0;
  let fraction = 0;
  let c = 0;
  for (; i < limit; i++) {
    c = bytes[i];
    if (c < ZERO || c > NINE) break;
    mantissa = mantissa * 10 + (c - ZERO);
    digits++;
  }
  if (i < limit && c === DOT) {
    for (i++; i < limit; i++) {
      c = bytes[i];
      if (c < ZERO || c > NINE) break;
      mantissa = mantissa * 10 + (c - ZERO);
      digits++;
      fraction++;
    }
  }
  if (digits > 0 && digits <= 15 && (i === limit || c === delimiter || c === LF || c === CR)) {
    scanned.end = i;
    const value = fraction === 0 ? mantissa : mantissa / POW10[fraction];
    return negative ? -value : value;
  }
  while (i < limit) {
    c = bytes[i];
    if (c === delimiter || c === LF || c === CR) break;
    i++;
  }
  scanned.end = i;
  return parseDecimal(bytes, start, i);
}
