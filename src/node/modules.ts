/**
 * The host's module service for the cluster: no binaries copied by hand. A kernel asked to run a
 * process whose module this node lacks (a spawn or a migration from another node) asks its host
 * (module_fetch), which gets the instrumented module by its content hash from the node the
 * request came from (module_get) and writes it into this node's cache; the kernel then compiles
 * it from there as usual (src/wasm/compiled.ts).
 *
 * Trust: the module comes over an authenticated cluster link from a member running the same
 * instrumentation (src/node/cluster.ts checks both at join); it is checked to be valid wasm and
 * to be the module named. A member can start any program anywhere anyway.
 */

import type { Messenger } from '../msg/messenger.js';
import type { Protocol } from '../protocol.js';
import { describeEndpoint, hostOf, nodeOf } from '../msg/address.js';
import { cacheHas, readCache, writeCache } from '../wasm/cache.js';
import type { InstrumentInfo } from '../wasm/instrument.js';

/** A large module over a slow link: generous, but not for ever. */
const FETCH_TIMEOUT_MS = 120_000;

export function installModuleService(messenger: Messenger<Protocol>, kick: () => void): void {
  /** Fetches in flight, by hash: kernels asking for the same module share one. */
  const fetching = new Map<string, ((error: Error | null) => void)[]>();

  messenger.on('module_get', (msg, from) => {
    const entry = readCache(msg.hash);
    if (entry === undefined) messenger.fail(from, 'ENOENT', `module ${msg.hash} is not in the cache of ${describeEndpoint(messenger.self)}`);
    else messenger.reply(from, 'module_get', { wasm: entry.bytes, info: JSON.stringify(entry.info) });
  });

  messenger.on('module_fetch', (msg, from) => {
    const answer = (error: Error | null): void => {
      if (error === null) messenger.reply(from, 'module_fetch', { hash: msg.hash });
      else messenger.fail(from, 'ENOEXEC', error.message);
      kick();
    };
    if (cacheHas(msg.hash)) return answer(null);
    const waiting = fetching.get(msg.hash);
    if (waiting !== undefined) return void waiting.push(answer);
    fetching.set(msg.hash, [answer]);
    const settle = (error: Error | null): void => {
      for (const done of fetching.get(msg.hash) ?? []) done(error);
      fetching.delete(msg.hash);
    };
    const source = hostOf(nodeOf(msg.from));
    messenger.request(source, 'module_get', { hash: msg.hash }, FETCH_TIMEOUT_MS, (error, reply) => {
      if (error !== null || reply === undefined) return settle(new Error(`module ${msg.hash} could not be fetched from ${describeEndpoint(source)}: ${error?.message ?? 'no reply'}`));
      try {
        store(msg.hash, reply.wasm, reply.info);
        settle(null);
      } catch (failure) {
        settle(new Error(`module ${msg.hash} from ${describeEndpoint(source)}: ${(failure as Error).message}`));
      }
      return undefined;
    });
    kick();
    return undefined;
  });
}

/** Check what came and put it in the cache. */
function store(hash: string, wasm: Uint8Array, infoText: string): void {
  const info = JSON.parse(infoText) as InstrumentInfo;
  if (info.originalHash !== hash) throw new Error(`it names module ${String(info.originalHash)}`);
  if (!WebAssembly.validate(wasm)) throw new Error('it is not valid WebAssembly');
  writeCache({ bytes: wasm, info });
}
