/**
 * Finding the program a process asks to spawn: its guest path is resolved in the spawner's
 * preopened directories (confined as every path is, see sandbox.ts), and the file's module hash
 * is looked up by the file's identity. On a miss the kernel asks its node's host to prepare the
 * module (validate, instrument, cache: loader.ts) — binaryen is too heavy for kernel threads, and
 * a prepared module is then shared by every kernel through the module cache.
 *
 * A process that comes from another node (spawned or migrated here) may name a module this node
 * has never seen: `ensure` has the host fetch it from that node first (src/node/modules.ts).
 */

import type { Kernel } from '../kernel/kernel.js';
import { nodeOf, type EndpointId } from '../msg/address.js';
import { moduleAvailable } from '../wasm/compiled.js';
import { Errno, WasiError } from '../kernel/wasi/errno.js';
import { asWasiError } from './remote-error.js';
import { resolve } from '../kernel/wasi/sandbox.js';
import { RemoteError } from '../msg/requests.js';

/** Preparing a large module (instrumenting it), or fetching it from another node, can take long. */
const PREPARE_TIMEOUT_MS = 120_000;

export class Programs {
  /** "dev:ino:size:mtime" → module hash: a rewritten file is prepared again. */
  private readonly hashes = new Map<string, string>();

  constructor(private readonly kernel: Kernel) {}

  /** The module hash of the program at guest `path`, seen through `dirs`; `done` may run at once. */
  lookup(dirs: { host: string; guest: string }[], path: string, done: (error: WasiError | null, hash?: string) => void): void {
    const { hostPath, key } = locate(dirs, path);
    const known = this.hashes.get(key);
    if (known !== undefined) {
      done(null, known);
      return;
    }
    this.kernel.messenger.request(this.kernel.host, 'module_prepare', { path: hostPath }, PREPARE_TIMEOUT_MS, (error, reply) => {
      if (error !== null || reply === undefined) {
        done(asWasiError(error ?? new Error('no answer'), { fallback: Errno.NOEXEC, context: path }));
        return;
      }
      this.hashes.set(key, reply.hash);
      done(null, reply.hash);
    });
  }
}

/**
 * Make sure module `hash` is on this node before a process of it is built here: at once when it
 * is (always, for a request from this node), else once the host fetched it from `from`'s node.
 */
export function ensureModule(kernel: Kernel, hash: string, from: EndpointId, done: (error: WasiError | null) => void): void {
  if (nodeOf(from) === nodeOf(kernel.id) || moduleAvailable(hash)) {
    done(null);
    return;
  }
  kernel.messenger.request(kernel.host, 'module_fetch', { hash, from }, PREPARE_TIMEOUT_MS, (error) => {
    done(error === null ? null : new WasiError(Errno.NOEXEC, error instanceof RemoteError ? error.detail : error.message));
  });
}

/** The host path of guest `path` (relative paths start at "/") and the file's identity. */
function locate(dirs: { host: string; guest: string }[], path: string): { hostPath: string; key: string } {
  const parts = components(path);
  let best: { host: string; depth: number } | undefined;
  for (const d of dirs) {
    const prefix = components(d.guest);
    const matches = prefix.length <= parts.length && prefix.every((c, i) => parts[i] === c);
    if (matches && (best === undefined || prefix.length > best.depth)) best = { host: d.host, depth: prefix.length };
  }
  if (best === undefined) throw new WasiError(Errno.NOENT, `${path}: not in a preopened directory`);
  const rest = parts.slice(best.depth).join('/');
  const r = resolve(best.host, rest === '' ? '.' : rest, true);
  if (r.stat === undefined) throw new WasiError(Errno.NOENT, path);
  if (!r.stat.isFile()) throw new WasiError(Errno.ACCES, `${path}: not a regular file`);
  const st = r.stat;
  return { hostPath: r.hostPath, key: `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}` };
}

const components = (path: string): string[] => path.split('/').filter((c) => c !== '' && c !== '.');
