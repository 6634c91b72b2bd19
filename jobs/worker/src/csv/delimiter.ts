// Which byte separates the fields: named by DELIMITER / --delimiter, or detected from the header line.
//
// Detection counts each candidate (`,` `;` tab `|`) outside double quotes on the first line (the
// header) and takes the one that splits it into the most fields. A tie goes to the earlier candidate
// in that order, so a header with none of them, or as many commas as semicolons, is read with commas.
// Only the header is looked at: it is the one line whose shape is known (names, no decimal commas),
// and a data row's quoted text could otherwise outvote it.

export const CANDIDATES = [',', ';', '\t', '|'] as const;
export type Delimiter = (typeof CANDIDATES)[number];

/** How the delimiter was chosen, as model.json and the log record it. */
export type DelimiterChoice = 'DELIMITER' | 'detected';

/** The spellings DELIMITER accepts, besides the character itself. */
const NAMES: Record<string, Delimiter> = {
  comma: ',',
  semicolon: ';',
  tab: '\t',
  '\\t': '\t',
  pipe: '|',
};

export const DELIMITER_CHOICES = ', ; | tab';

/** The delimiter a DELIMITER value names, or undefined if it names none. */
export function parseDelimiter(text: string): Delimiter | undefined {
  if ((CANDIDATES as readonly string[]).includes(text)) return text as Delimiter;
  return NAMES[text.trim().toLowerCase()];
}

/** How a delimiter is shown in a message: the character in quotes, or `tab`. */
export function delimiterName(delimiter: string): string {
  return delimiter === '\t' ? 'tab' : JSON.stringify(delimiter);
}

const QUOTE = 34;
const LF = 10;
const CR = 13;
const CODES = CANDIDATES.map((c) => c.charCodeAt(0));

export interface Detection {
  delimiter: Delimiter;
  /** Fields the header has when split at `delimiter`. */
  fields: number;
  /** Whether the header line ended within `bytes` (otherwise more input may change the counts). */
  complete: boolean;
}

/** Detects the delimiter from the first line of `bytes` (a leading byte order mark is harmless). */
export function detectDelimiter(bytes: Uint8Array): Detection {
  const counts = [0, 0, 0, 0];
  let quoted = false;
  let content = false; // blank lines before the header are skipped, as the reader skips them
  let complete = false;
  const start = bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  for (let i = start; i < bytes.length; i++) {
    const c = bytes[i];
    if (!quoted && (c === LF || c === CR)) {
      if (!content) continue;
      complete = true;
      break;
    }
    content = true;
    if (c === QUOTE)
      quoted = !quoted; // a doubled quote toggles twice: still inside
    else if (!quoted) {
      const k = CODES.indexOf(c);
      if (k >= 0) counts[k]++;
    }
  }
  let best = 0;
  for (let k = 1; k < counts.length; k++) if (counts[k] > counts[best]) best = k;
  return { delimiter: CANDIDATES[best], fields: counts[best] + 1, complete };
}
