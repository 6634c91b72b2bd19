// Cron expressions for scheduled jobs: five fields, minute hour day-of-month month day-of-week, in
// UTC, as Cloud Scheduler and crontab(5) read them: `*`, lists `1,15`, ranges `1-5`, steps `*/10` and
// `8-18/2`, month and day names (JAN, MON), 7 for Sunday, and @hourly @daily @weekly @monthly @yearly.
// When both day fields are restricted, a day matching either one is due (crontab's rule).

export class CronError extends Error {
  readonly code = 'INVALID_CRON';
  constructor(expression: string, detail: string) {
    super(`cron ${JSON.stringify(expression)}: ${detail}`);
    this.name = 'CronError';
  }
}

export interface CronSchedule {
  expression: string;
  minutes: Set<number>;
  hours: Set<number>;
  daysOfMonth: Set<number>;
  months: Set<number>;
  daysOfWeek: Set<number>;
  /** Whether each day field was restricted (not `*`). */
  domRestricted: boolean;
  dowRestricted: boolean;
}

const MACROS: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};
const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

interface FieldSpec {
  name: string;
  min: number;
  max: number;
  names?: string[];
  /** The value the first name stands for. */
  namesFrom?: number;
}
const FIELDS: FieldSpec[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTHS, namesFrom: 1 },
  { name: 'day of week', min: 0, max: 7, names: DAYS, namesFrom: 0 },
];

export function parseCron(expression: string): CronSchedule {
  if (typeof expression !== 'string' || expression.length > 200)
    throw new CronError(String(expression), 'must be a string of at most 200 characters');
  const trimmed = expression.trim();
  const expanded = MACROS[trimmed.toLowerCase()] ?? trimmed;
  const parts = expanded.split(/\s+/);
  if (parts.length !== 5) {
    throw new CronError(
      expression,
      `needs 5 fields (minute hour day-of-month month day-of-week), got ${parts.length}`,
    );
  }
  const sets = parts.map((part, i) => parseField(part, FIELDS[i], expression));
  const daysOfWeek = new Set([...sets[4]].map((d) => (d === 7 ? 0 : d)));
  return {
    expression: trimmed,
    minutes: sets[0],
    hours: sets[1],
    daysOfMonth: sets[2],
    months: sets[3],
    daysOfWeek,
    domRestricted: parts[2] !== '*' && parts[2] !== '?',
    dowRestricted: parts[4] !== '*' && parts[4] !== '?',
  };
}

function parseField(text: string, spec: FieldSpec, expression: string): Set<number> {
  const values = new Set<number>();
  for (const item of text.split(',')) {
    const match = /^(\*|\?|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:\/(\d+))?$/.exec(item);
    if (match === null) throw new CronError(expression, `${spec.name} ${JSON.stringify(item)} is not valid`);
    const [, range, stepText] = match;
    const step = stepText === undefined ? 1 : Number(stepText);
    if (step < 1) throw new CronError(expression, `${spec.name}: a step must be at least 1`);
    let low: number;
    let high: number;
    if (range === '*' || range === '?') {
      [low, high] = [spec.min, spec.name === 'day of week' ? 6 : spec.max];
    } else {
      const [a, b] = range.split('-');
      low = value(a, spec, expression);
      high = b === undefined ? (stepText === undefined ? low : spec.max) : value(b, spec, expression);
      if (high < low) throw new CronError(expression, `${spec.name}: range ${range} runs backwards`);
    }
    for (let v = low; v <= high; v += step) values.add(v);
  }
  return values;
}

function value(text: string, spec: FieldSpec, expression: string): number {
  const named = spec.names?.indexOf(text.toUpperCase()) ?? -1;
  const n = named >= 0 ? named + (spec.namesFrom ?? 0) : /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(n >= spec.min && n <= spec.max)) {
    throw new CronError(expression, `${spec.name} ${JSON.stringify(text)} is not in ${spec.min}-${spec.max}`);
  }
  return n;
}

const MINUTE = 60_000;

/** The first time the schedule is due strictly after `after` (UTC); throws if none within 5 years. */
export function nextCronTime(schedule: CronSchedule, after: Date): Date {
  const t = new Date(Math.floor(after.getTime() / MINUTE) * MINUTE + MINUTE);
  const limit = after.getTime() + 5 * 366 * 24 * 60 * MINUTE;
  while (t.getTime() <= limit) {
    if (!schedule.months.has(t.getUTCMonth() + 1)) {
      t.setUTCMonth(t.getUTCMonth() + 1, 1);
      t.setUTCHours(0, 0, 0, 0);
      continue;
    }
    if (!dayMatches(schedule, t)) {
      t.setUTCDate(t.getUTCDate() + 1);
      t.setUTCHours(0, 0, 0, 0);
      continue;
    }
    if (!schedule.hours.has(t.getUTCHours())) {
      t.setUTCHours(t.getUTCHours() + 1, 0, 0, 0);
      continue;
    }
    if (!schedule.minutes.has(t.getUTCMinutes())) {
      t.setUTCMinutes(t.getUTCMinutes() + 1, 0, 0);
      continue;
    }
    return t;
  }
  throw new CronError(schedule.expression, 'is never due (within five years)');
}

function dayMatches(schedule: CronSchedule, t: Date): boolean {
  const dom = schedule.daysOfMonth.has(t.getUTCDate());
  const dow = schedule.daysOfWeek.has(t.getUTCDay());
  if (schedule.domRestricted && schedule.dowRestricted) return dom || dow;
  if (schedule.domRestricted) return dom;
  if (schedule.dowRestricted) return dow;
  return true;
}
