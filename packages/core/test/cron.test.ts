import { describe, expect, it } from 'vitest';
import { CronError, nextCronTime, parseCron } from '../src/cron.ts';

const next = (expression: string, after: string) =>
  nextCronTime(parseCron(expression), new Date(after)).toISOString();

describe('cron', () => {
  it.each([
    ['*/15 * * * *', '2026-11-22T10:07:30Z', '2026-11-22T10:15:00.000Z'],
    ['*/15 * * * *', '2026-11-22T10:15:00Z', '2026-11-22T10:30:00.000Z'], // strictly after
    ['0 6 * * 1-5', '2026-11-21T07:00:00Z', '2026-11-23T06:00:00.000Z'], // Saturday -> Monday
    ['0 6 * * MON-FRI', '2026-11-21T07:00:00Z', '2026-11-23T06:00:00.000Z'],
    ['30 2 1 * *', '2026-11-22T00:00:00Z', '2026-12-01T02:30:00.000Z'],
    ['0 0 29 2 *', '2026-03-01T00:00:00Z', '2028-02-29T00:00:00.000Z'], // leap day
    ['0 0 * * 7', '2026-11-22T00:00:00Z', '2026-11-29T00:00:00.000Z'], // 7 is Sunday
    ['0 12 13 * 5', '2026-11-22T00:00:00Z', '2026-11-27T12:00:00.000Z'], // day-of-month OR Friday
    ['@daily', '2026-12-31T23:59:00Z', '2027-01-01T00:00:00.000Z'],
    ['@hourly', '2026-11-22T10:00:01Z', '2026-11-22T11:00:00.000Z'],
    ['5/20 8-18/5 * JAN,DEC *', '2026-11-22T00:00:00Z', '2026-12-01T08:05:00.000Z'],
  ])('%s after %s is due at %s', (expression, after, due) => {
    expect(next(expression, after)).toBe(due);
  });

  it.each([
    ['* * * *', 'needs 5 fields'],
    ['60 * * * *', 'minute "60" is not in 0-59'],
    ['* * * FOO *', 'month "FOO" is not in 1-12'],
    ['5-1 * * * *', 'range 5-1 runs backwards'],
    ['*/0 * * * *', 'a step must be at least 1'],
    ['* * * * * ; rm -rf /', 'needs 5 fields'],
  ])('refuses %j', (expression, message) => {
    expect(() => parseCron(expression)).toThrow(CronError);
    expect(() => parseCron(expression)).toThrow(message);
  });

  it('says so when a schedule is never due', () => {
    expect(() => next('0 0 31 2 *', '2026-01-01T00:00:00Z')).toThrow('is never due');
  });
});
