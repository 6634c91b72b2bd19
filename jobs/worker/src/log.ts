// How the worker's parts report: a message and fields, which cli.ts writes as one JSON line on
// stdout, `severity` first (INFO unless the fields say otherwise), then `message`, then the fields.
export type Log = (message: string, fields?: Record<string, unknown>) => void;

export function logLine(message: string, fields: Record<string, unknown> = {}): string {
  return `${JSON.stringify({ severity: 'INFO', message, ...fields })}\n`;
}
