// `npm run bench`: every benchmark of the project, one after the other; exit 1 if one misses its target.
import { benchWorker } from './worker.ts';

const results = [benchWorker()];
process.exitCode = results.every(Boolean) ? 0 : 1;
