// `npm run bench`: every benchmark of the project, one after the other; exit 1 if one misses its target.
// `npm run bench -- dispatcher` (or worker, estimator) runs one; `npm run bench -- intake drain` runs those parts
// of the dispatcher's (cold-start, intake, drain).
import { benchDispatcher, DISPATCHER_PARTS, type DispatcherPart } from './dispatcher.ts';
import { benchEstimator } from './estimator.ts';
import { benchWorker } from './worker.ts';

const chosen = process.argv.slice(2);
const parts = DISPATCHER_PARTS.filter((part) => chosen.includes(part));
const all: Record<string, () => boolean | Promise<boolean>> = {
  worker: benchWorker,
  dispatcher: () => benchDispatcher(parts.length > 0 ? parts : DISPATCHER_PARTS),
  estimator: benchEstimator,
};
const unknown = chosen.filter((name) => !(name in all) && !parts.includes(name as DispatcherPart));
if (unknown.length > 0)
  throw new Error(
    `no benchmark ${unknown.join(', ')}: ${[...Object.keys(all), ...DISPATCHER_PARTS].join(', ')}`,
  );
const results: boolean[] = [];
for (const [name, bench] of Object.entries(all))
  if (chosen.length === 0 || chosen.includes(name) || (name === 'dispatcher' && parts.length > 0))
    results.push(await bench());
process.exitCode = results.every(Boolean) ? 0 : 1;
