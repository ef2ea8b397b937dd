/**
 * `popcorn dashboard [--http HOST:PORT]`: start the web view on the running node (if it is not
 * already serving) and print its URL, which carries the access token (src/node/dashboard/server.ts).
 */

import { controlRequest } from '../node/control-client.js';

export async function dashboardCommand(options: { http?: string }): Promise<number> {
  const answer = await controlRequest({ op: 'dashboard', ...(options.http === undefined ? {} : { http: options.http }) });
  process.stdout.write(`${answer.url}\n`);
  return 0;
}
