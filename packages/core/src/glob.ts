// Globs over object names ("**/*.csv", "raw/{a,b}/*.json", "img/[!_]*.png").
//
//   **   any characters, "/" included; "**/" also matches no directory at all
//   *    any run of characters except "/"        ?  one character except "/"
//   {a,b,c}  alternatives (not nested)           [abc] [a-z] [!a]  one character except "/"
//   \x   the character x itself                  anything else is itself
//
// Object names are hostile input (newlines, quotes, "$(...)", non-ASCII, up to 1,024 bytes).
// globToRegExp gives the equivalent RegExp, but the router matches with compileGlob: a
// backtracking regex like /^[^/]*_[^/]*_[^/]*_[^/]*\.csv$/ takes minutes on 1,200 underscores,
// while compileGlob walks the name once per glob token (time linear in the name's length).

type Token =
  | { kind: 'literal'; char: string }
  | { kind: 'any' }
  | { kind: 'class'; negated: boolean; ranges: Array<[number, number]> }
  | { kind: 'star' }
  | { kind: 'globstar' }
  | { kind: 'globstar-dir' }
  | { kind: 'alternatives'; options: Token[][] };

/** A compiled glob: `test` is a full match of the whole object name. */
export interface GlobMatcher {
  readonly glob: string;
  test(name: string): boolean;
}

/** Throws an Error naming the glob when it can't match anything sensible (e.g. "[z-a]"). */
export function compileGlob(glob: string): GlobMatcher {
  const tokens = parseGlob(glob);
  return {
    glob,
    test(name: string): boolean {
      const text = Array.from(name); // code points, like the RegExp's u flag
      const start = new Array<boolean>(text.length + 1).fill(false);
      start[0] = true;
      return advance(tokens, text, start)[text.length];
    },
  };
}

/** The same language as compileGlob, as an anchored RegExp with the s and u flags. */
export function globToRegExp(glob: string): RegExp {
  return new RegExp(`^(?:${tokens2source(parseGlob(glob))})$`, 'su');
}

function parseGlob(glob: string): Token[] {
  try {
    return tokenize(Array.from(glob), true);
  } catch (error) {
    throw new Error(`${JSON.stringify(glob)} is not a valid glob: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

function tokenize(chars: string[], allowBraces: boolean): Token[] {
  const tokens: Token[] = [];
  for (let i = 0; i < chars.length; i++) {
    const char = chars[i];
    if (char === '*') {
      let end = i;
      while (chars[end + 1] === '*') end++;
      if (end === i) tokens.push({ kind: 'star' });
      else if (chars[end + 1] === '/') {
        tokens.push({ kind: 'globstar-dir' });
        end++;
      } else tokens.push({ kind: 'globstar' });
      i = end;
    } else if (char === '?') {
      tokens.push({ kind: 'any' });
    } else if (char === '[' || (char === '{' && allowBraces)) {
      const group = char === '[' ? readClass(chars, i) : readAlternatives(chars, i);
      // An unclosed "[" or "{" is just that character.
      tokens.push(group?.token ?? { kind: 'literal', char });
      i = group?.end ?? i;
    } else if (char === '\\' && i + 1 < chars.length) {
      tokens.push({ kind: 'literal', char: chars[++i] });
    } else {
      tokens.push({ kind: 'literal', char });
    }
  }
  return tokens;
}

/** `[...]` starting at `start`, or undefined when it never closes (then "[" is itself). */
function readClass(chars: string[], start: number): { token: Token; end: number } | undefined {
  let i = start + 1;
  const negated = chars[i] === '!' || chars[i] === '^';
  if (negated) i++;
  const ranges: Array<[number, number]> = [];
  for (let first = true; i < chars.length; first = false, i++) {
    if (chars[i] === ']' && !first) return { token: { kind: 'class', negated, ranges }, end: i };
    if (chars[i] === '\\' && i + 1 < chars.length) i++;
    const low = chars[i].codePointAt(0)!;
    let high = low;
    if (chars[i + 1] === '-' && i + 2 < chars.length && chars[i + 2] !== ']') {
      if (chars[i + 2] === '\\' && i + 3 < chars.length) i++;
      high = chars[i + 2].codePointAt(0)!;
      i += 2;
      if (high < low) throw new Error(`[${String.fromCodePoint(low)}-${chars[i]}] is an empty range`);
    }
    ranges.push([low, high]);
  }
  return undefined;
}

/** `{a,b}` starting at `start`, or undefined when it never closes or nests. */
function readAlternatives(chars: string[], start: number): { token: Token; end: number } | undefined {
  const options: string[][] = [[]];
  for (let i = start + 1; i < chars.length; i++) {
    const char = chars[i];
    if (char === '}') {
      return { token: { kind: 'alternatives', options: options.map((o) => tokenize(o, false)) }, end: i };
    }
    if (char === '{') return undefined;
    if (char === ',') options.push([]);
    else if (char === '\\' && i + 1 < chars.length) options[options.length - 1].push(char, chars[++i]);
    else options[options.length - 1].push(char);
  }
  return undefined;
}

/** Positions in `text` reachable after the tokens, given those reachable before. */
function advance(tokens: Token[], text: string[], start: boolean[]): boolean[] {
  let reach = start;
  for (const token of tokens) {
    if (!reach.includes(true)) break;
    reach = advanceOne(token, text, reach);
  }
  return reach;
}

function advanceOne(token: Token, text: string[], reach: boolean[]): boolean[] {
  const next = new Array<boolean>(reach.length).fill(false);
  switch (token.kind) {
    case 'star':
    case 'globstar':
      for (let i = 0; i < reach.length; i++) {
        const grows = i > 0 && next[i - 1] && (token.kind === 'globstar' || text[i - 1] !== '/');
        next[i] = reach[i] || grows;
      }
      return next;
    case 'globstar-dir': {
      // Either nothing, or anything from an earlier reachable position that ends in "/".
      let earlier = false;
      for (let i = 0; i < reach.length; i++) {
        next[i] = reach[i] || (earlier && text[i - 1] === '/');
        earlier ||= reach[i];
      }
      return next;
    }
    case 'alternatives':
      for (const option of token.options) {
        advance(option, text, reach).forEach((reached, i) => (next[i] ||= reached));
      }
      return next;
    default:
      for (let i = 0; i < text.length; i++) next[i + 1] = reach[i] && matchesOne(token, text[i]);
      return next;
  }
}

function matchesOne(token: Token, char: string): boolean {
  if (token.kind === 'literal') return char === token.char;
  if (char === '/') return false;
  if (token.kind === 'any') return true;
  if (token.kind !== 'class') return false;
  const code = char.codePointAt(0)!;
  return token.ranges.some(([low, high]) => code >= low && code <= high) !== token.negated;
}

function tokens2source(tokens: Token[]): string {
  return tokens.map(tokenSource).join('');
}

function tokenSource(token: Token): string {
  switch (token.kind) {
    case 'literal':
      return escapeForRegExp(token.char);
    case 'any':
      return '[^/]';
    case 'star':
      return '[^/]*';
    case 'globstar':
      return '.*';
    case 'globstar-dir':
      return '(?:.*/)?';
    case 'alternatives':
      return `(?:${token.options.map(tokens2source).join('|')})`;
    case 'class': {
      const members = token.ranges
        .map(([low, high]) => {
          const from = escapeForRegExp(String.fromCodePoint(low), true);
          return low === high ? from : `${from}-${escapeForRegExp(String.fromCodePoint(high), true)}`;
        })
        .join('');
      // A class never matches "/", negated or not, like "*" and "?".
      return token.negated ? `[^/${members}]` : `(?!/)[${members}]`;
    }
  }
}

function escapeForRegExp(char: string, inClass = false): string {
  return /[\\^$.*+?()[\]{}|/]/.test(char) || (inClass && char === '-') ? `\\${char}` : char;
}
