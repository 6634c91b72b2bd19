// `pipeline capacity`: what bounds launches and what waits for them, from GET /capacity.
import type { CapacityView } from '@pipeline/dispatcher/queue-view.ts';
import { Api } from './api.ts';
import { parse } from './args.ts';
import { COMMANDS } from './commands.ts';
import { say, type Io } from './errors.ts';
import { capacityReport } from './queue-format.ts';

export async function capacityCommand(args: string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const { values } = parse(COMMANDS.capacity, args);
  const view = await new Api(values.url, env, 'capacity').json<CapacityView>(
    'GET',
    `/capacity?limit=${values.limit}`,
  );
  say(io, values.json ? JSON.stringify(view, null, 2) : capacityReport(view, new Date().toISOString()));
  return 0;
}
