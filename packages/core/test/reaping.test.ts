import { describe, expect, it } from 'vitest';
import { newJob, transition, type Job, type JobState } from '../src/job.ts';
import { instancesToReap, type PipelineInstance, type ReapOptions } from '../src/reaping.ts';

const JOB_ID = 'a'.repeat(32);
const NOW = new Date('2024-05-01T12:00:00.000Z');
const OPTIONS: ReapOptions = {
  pipelineLabel: 'true',
  graceSeconds: 300,
  defaultTimeoutSeconds: 3600,
  marginSeconds: 600,
};

/** An ISO time `minutes` before NOW. */
const ago = (minutes: number) => new Date(NOW.getTime() - minutes * 60_000).toISOString();

function instance(createdMinutesAgo: number, labels: Record<string, string> = {}): PipelineInstance {
  return {
    name: 'pipeline-aaaaaaaaaaaaaaaaaaaa-a1',
    zone: 'europe-west1-b',
    labels: { pipeline: 'true', 'job-id': JOB_ID, attempt: '1', ...labels },
    createdAt: ago(createdMinutesAgo),
    status: 'RUNNING',
  };
}

/** A job in `state` at `attempt`, last changed `changedMinutesAgo`, with an optional task timeout. */
function job(state: JobState, changedMinutesAgo: number, attempt = 1, timeoutSeconds?: number): Job {
  const received = newJob(JOB_ID, { kind: 'request', task: 'logreg', args: [], env: {} }, ago(120));
  const launched = transition(transition(received, 'QUEUED', ago(119)), 'LAUNCHED', ago(119), {
    target: 'vm',
    template: { args: [], env: {}, spot: false, ...(timeoutSeconds === undefined ? {} : { timeoutSeconds }) },
  });
  // Only what the reaper reads matters here: the state, the attempt and when it last changed.
  return { ...launched, state, attempt, updatedAt: ago(changedMinutesAgo) };
}

const NO_LEDGER_ENTRY = undefined;

// [what, instance, job of its job-id label (absent: not in the ledger), reason expected or undefined: kept]
const CASES: [string, PipelineInstance, Job | undefined, RegExp | undefined][] = [
  ['a running job, young VM', instance(10), job('RUNNING', 8), undefined],
  ['a launched job, young VM', instance(1), job('LAUNCHED', 1), undefined],
  ['a succeeded job, past the grace', instance(30), job('SUCCEEDED', 6), /^job a{32} is SUCCEEDED$/],
  ['a succeeded job, within the grace', instance(30), job('SUCCEEDED', 4), undefined],
  ['a failed job, past the grace', instance(30), job('FAILED', 10), /^job a{32} is FAILED$/],
  ['a cancelled job, past the grace', instance(30), job('CANCELLED', 10), /is CANCELLED$/],
  ['an ignored job, past the grace', instance(30), job('IGNORED', 10), /is IGNORED$/],
  ['a newer attempt, past the grace', instance(30), job('LAUNCHED', 6, 2), /at attempt 2, past this VM's 1/],
  ['a newer attempt, within the grace', instance(30), job('LAUNCHED', 2, 2), undefined],
  [
    'an attempt the ledger has not reached',
    instance(30, { attempt: '3' }),
    job('RUNNING', 20),
    /has no attempt 3/,
  ],
  [
    'no attempt label',
    { ...instance(30), labels: { pipeline: 'true', 'job-id': JOB_ID } },
    job('RUNNING', 20),
    /attempt label null/,
  ],
  ['a malformed attempt label', instance(30, { attempt: '01' }), job('RUNNING', 20), /attempt label "01"/],
  // default timeout 1 h + margin 10 min = 70 min
  ['a running job past its deadline', instance(71), job('RUNNING', 60), /^ran past its deadline of /],
  ['a running job just inside its deadline', instance(69), job('RUNNING', 60), undefined],
  [
    'the task timeout, not the default, sets the deadline',
    instance(71),
    job('RUNNING', 60, 1, 7200),
    undefined,
  ],
  [
    'a short task timeout',
    instance(20),
    job('RUNNING', 15, 1, 300),
    /deadline .*timeout 300 s \+ margin 600 s/,
  ],
  ['unknown to the ledger, past the grace', instance(6), NO_LEDGER_ENTRY, /^the ledger has no job a{32}/],
  ['unknown to the ledger, within the grace', instance(4), NO_LEDGER_ENTRY, undefined],
  [
    'no job-id label, past the grace',
    { ...instance(6), labels: { pipeline: 'true' } },
    NO_LEDGER_ENTRY,
    /has no job-id label/,
  ],
  [
    'a job-id label that is no job id',
    instance(6, { 'job-id': 'not-a-job' }),
    job('RUNNING', 5),
    /job-id label "not-a-job" is not a job id/,
  ],
  [
    'another pipeline label, even unknown and old',
    instance(600, { pipeline: 'staging' }),
    undefined,
    undefined,
  ],
  [
    'another pipeline label, job final',
    instance(600, { pipeline: 'staging' }),
    job('SUCCEEDED', 300),
    undefined,
  ],
  [
    'no pipeline label at all',
    { ...instance(600), labels: { 'job-id': JOB_ID, attempt: '1' } },
    NO_LEDGER_ENTRY,
    undefined,
  ],
  [
    'a VM already stopping, job final',
    { ...instance(30), status: 'STOPPING' },
    job('SUCCEEDED', 10),
    undefined,
  ],
  ['a stopped VM, job final', { ...instance(30), status: 'TERMINATED' }, job('SUCCEEDED', 10), /SUCCEEDED/],
  [
    'an unreadable creation time, job running',
    { ...instance(0), createdAt: 'yesterday' },
    job('RUNNING', 60),
    undefined,
  ],
];

describe('instancesToReap', () => {
  it.each(CASES)('%s', (_what, vm, ledgerJob, expected) => {
    const jobs = new Map<string, Job | undefined>([[JOB_ID, ledgerJob]]);
    const decisions = instancesToReap([vm], jobs, NOW, OPTIONS);
    if (expected === undefined) {
      expect(decisions).toEqual([]);
    } else {
      expect(decisions).toHaveLength(1);
      expect(decisions[0].instance).toBe(vm);
      expect(decisions[0].reason).toMatch(expected);
    }
  });

  it('decides each instance on its own and keeps their order', () => {
    const other = 'b'.repeat(32);
    const vms = [
      instance(30),
      instance(600, { pipeline: 'staging' }),
      { ...instance(30, { 'job-id': other }), name: 'pipeline-bbbbbbbbbbbbbbbbbbbb-a1' },
      instance(2, { 'job-id': 'c'.repeat(32) }),
    ];
    const jobs = new Map<string, Job | undefined>([
      [JOB_ID, job('SUCCEEDED', 10)],
      [other, undefined],
    ]);
    const decisions = instancesToReap(vms, jobs, NOW, OPTIONS);
    expect(decisions.map((d) => [d.instance, d.reason])).toEqual([
      [vms[0], `job ${JOB_ID} is SUCCEEDED`],
      [vms[2], expect.stringMatching(/^the ledger has no job b{32}/)],
    ]);
  });

  it('honours another pipeline label value and a zero grace', () => {
    const vm = instance(1, { pipeline: 'prod' });
    const options = { ...OPTIONS, pipelineLabel: 'prod', graceSeconds: 0 };
    const jobs = new Map([[JOB_ID, job('SUCCEEDED', 0)]]);
    expect(instancesToReap([vm], jobs, NOW, options)).toHaveLength(1);
    expect(instancesToReap([instance(1)], jobs, NOW, options)).toEqual([]);
  });
});

describe('instancesToReap and instances the ledger does not know', () => {
  it('waits the longer unknownGraceSeconds for them, so a released claim can be taken again first', () => {
    const options = { ...OPTIONS, unknownGraceSeconds: 1800 };
    const young = instance(10);
    const old = instance(40);
    expect(instancesToReap([young], new Map([[JOB_ID, NO_LEDGER_ENTRY]]), NOW, options)).toEqual([]);
    expect(
      instancesToReap([old], new Map([[JOB_ID, NO_LEDGER_ENTRY]]), NOW, options).map((d) => d.reason),
    ).toEqual([`the ledger has no job ${JOB_ID} (created ${ago(40)})`]);
  });
});
