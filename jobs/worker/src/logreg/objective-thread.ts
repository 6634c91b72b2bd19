// The helper thread of parallel.ts: waits for a parameter vector, computes the data term over its
// rows into shared memory, signals, and waits again, until told to stop.
import { workerData } from 'node:worker_threads';
import { dataTerm } from './objective.ts';

import type { Segment } from './dataset.ts';

interface HelperData {
  segments: Segment[];
  d: number;
  classCount: number;
  ctrl: Int32Array;
  theta: Float64Array;
  gradient: Float64Array;
  loss: Float64Array;
}

const { segments, d, classCount, ctrl, theta, gradient, loss } = workerData as HelperData;
const term = dataTerm(segments, d, classCount);
const local = new Float64Array(gradient.length);

Atomics.store(ctrl, 2, 1);
Atomics.notify(ctrl, 2);
let seen = 0;
for (;;) {
  Atomics.wait(ctrl, 0, seen);
  const command = Atomics.load(ctrl, 0);
  if (command < 0) break;
  if (command === seen) continue;
  seen = command;
  loss[0] = term(theta, local);
  gradient.set(local);
  Atomics.store(ctrl, 1, command);
  Atomics.notify(ctrl, 1);
}
