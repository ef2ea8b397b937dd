/** `popcorn shutdown`: stop the running node in order (its processes are killed) and remove its socket. */

import { controlRequest } from '../node/control-client.js';

export async function shutdownCommand(): Promise<number> {
  await controlRequest({ op: 'shutdown' });
  process.stdout.write('popcorn node stopped\n');
  return 0;
}
