// The same history written into any Ledger, to check `succeeded(rule, limit)` on each adapter: jobs of
// rules a and b that ended SUCCEEDED or FAILED, in order of creation.
import { newJob, transition, type Ledger } from '@pipeline/core';

const STEPS: ['a' | 'b', 'SUCCEEDED' | 'FAILED'][] = [
  ['a', 'SUCCEEDED'],
  ['b', 'SUCCEEDED'],
  ['a', 'FAILED'],
  ['a', 'SUCCEEDED'],
  ['a', 'SUCCEEDED'],
];

/** Writes the history with ids from `firstId` on; returns the ids of rule a's SUCCEEDED jobs, newest first. */
export async function writeRuleHistory(ledger: Ledger, firstId: number): Promise<string[]> {
  const at = (ms: number) => new Date(Date.UTC(2026, 10, 22) + ms).toISOString();
  const wanted: string[] = [];
  for (const [i, [rule, state]] of STEPS.entries()) {
    const id = (firstId + i).toString(16).padStart(32, '0');
    const source = { kind: 'request' as const, task: 'logreg', args: [], env: {} };
    const { job } = await ledger.claim(newJob(id, source, at(i * 10)), 1000);
    const queued = transition(job, 'QUEUED', at(i * 10 + 1), { rule });
    if (!(await ledger.update(queued))) throw new Error(`could not queue ${id}`);
    const launched = transition(queued, 'LAUNCHED', at(i * 10 + 1));
    if (!(await ledger.update(launched))) throw new Error(`could not launch ${id}`);
    if (!(await ledger.update(transition(launched, state, at(i * 10 + 2)))))
      throw new Error(`could not end ${id}`);
    if (rule === 'a' && state === 'SUCCEEDED') wanted.unshift(id);
  }
  return wanted;
}
