// `pipeline capacity`: what bounds launches and what waits for them, from GET /capacity.
import type { CapacityView } from '../queue-view.ts';
import { Api, MAX_PAGE } from './api.ts';
import { API_OPTIONS, integerOption, parse } from './args.ts';
import { say, type Io } from './errors.ts';
import { capacityReport } from './queue-format.ts';

export async function capacityCommand(args: string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const { values } = parse('capacity', args, { ...API_OPTIONS, limit: { type: 'string' } });
  const limit = integerOption('capacity', 'limit', values.limit, 1, MAX_PAGE) ?? 20;
  const view = await new Api(values.url, env, 'capacity').json<CapacityView>(
    'GET',
    `/capacity?limit=${limit}`,
  );
  say(io, values.json ? JSON.stringify(view, null, 2) : capacityReport(view, new Date().toISOString()));
  return 0;
}
