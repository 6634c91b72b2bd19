// What the pipeline prints for people (the `pipeline` command's tables, `npm start`'s lines) takes
// object names, paths and errors as data: their control characters are shown escaped, so a name can
// neither break a line or a table nor send an escape sequence to the terminal.

/** Text with control characters (also newlines, and C1 controls like CSI) escaped as in JSON. */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => {
    const escaped = JSON.stringify(c).slice(1, -1); // \n, \t, \u001b; JSON leaves DEL and C1 as they are
    return escaped.length > 1 ? escaped : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
}
