// `npm run bench`: every benchmark of the project, one after the other; exit 1 if one misses its target.
// `npm run bench -- dispatcher` (or worker) runs one.
import { benchDispatcher } from './dispatcher.ts';
import { benchWorker } from './worker.ts';

const all: Record<string, () => boolean | Promise<boolean>> = {
  worker: benchWorker,
  dispatcher: benchDispatcher,
};
const chosen = process.argv.slice(2);
const results: boolean[] = [];
for (const [name, bench] of Object.entries(all))
  if (chosen.length === 0 || chosen.includes(name)) results.push(await bench());
process.exitCode = results.every(Boolean) ? 0 : 1;
