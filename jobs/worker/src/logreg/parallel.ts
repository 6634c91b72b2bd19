// Splits the data term between this thread and one helper thread, which share the matrix (its blocks
// live in SharedArrayBuffers) and exchange parameters and partial gradients through shared memory,
// synchronized with Atomics. The objective stays a plain synchronous function for the optimizer.
// If the helper does not start within a few seconds, the caller computes everything on its own.
import { Worker } from 'node:worker_threads';
import type { Segment } from './dataset.ts';
import { dataTerm, type DataTerm } from './objective.ts';

const COMMAND = 0; // sequence number of the last request (-1: stop)
const DONE = 1; // sequence number of the last result
const READY = 2; // 1 once the helper waits for work
const START_TIMEOUT_MS = 10_000;

export interface ParallelDataTerm {
  term: DataTerm;
  close(): void;
}

export function parallelDataTerm(
  segments: readonly Segment[],
  d: number,
  classCount: number,
  parameters: number,
): ParallelDataTerm | undefined {
  const split = splitByRows(segments);
  const ctrl = new Int32Array(new SharedArrayBuffer(3 * 4));
  const theta = new Float64Array(new SharedArrayBuffer(parameters * 8));
  const gradient = new Float64Array(new SharedArrayBuffer(parameters * 8));
  const loss = new Float64Array(new SharedArrayBuffer(8));
  if (
    split.helper.some(
      (s) => !(s.x.buffer instanceof SharedArrayBuffer) || !(s.y.buffer instanceof SharedArrayBuffer),
    )
  ) {
    return undefined;
  }
  const worker = new Worker(new URL('./objective-thread.ts', import.meta.url), {
    workerData: { segments: split.helper, d, classCount, ctrl, theta, gradient, loss },
  });
  worker.unref();
  worker.on('error', () => {}); // a failed start shows as a timeout below
  if (Atomics.wait(ctrl, READY, 0, START_TIMEOUT_MS) === 'timed-out' && Atomics.load(ctrl, READY) !== 1) {
    void worker.terminate();
    return undefined;
  }
  const local = dataTerm(split.own, d, classCount);
  let sequence = 0;
  return {
    term(thetaIn, gradientOut) {
      theta.set(thetaIn);
      sequence++;
      Atomics.store(ctrl, COMMAND, sequence);
      Atomics.notify(ctrl, COMMAND);
      let total = local(thetaIn, gradientOut);
      for (let done = Atomics.load(ctrl, DONE); done !== sequence; done = Atomics.load(ctrl, DONE)) {
        Atomics.wait(ctrl, DONE, done);
      }
      for (let j = 0; j < gradientOut.length; j++) gradientOut[j] += gradient[j];
      total += loss[0];
      return total;
    },
    close() {
      Atomics.store(ctrl, COMMAND, -1);
      Atomics.notify(ctrl, COMMAND);
    },
  };
}

/** Two halves with about the same number of rows; the helper takes the second. */
function splitByRows(segments: readonly Segment[]): { own: Segment[]; helper: Segment[] } {
  const total = segments.reduce((sum, s) => sum + s.rows, 0);
  const own: Segment[] = [];
  let rows = 0;
  let i = 0;
  for (; i < segments.length && rows + segments[i].rows / 2 <= total / 2; i++) {
    own.push(segments[i]);
    rows += segments[i].rows;
  }
  return { own, helper: segments.slice(i) };
}
