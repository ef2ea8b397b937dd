/**
 * The layer and cycle check of `npm run lint` (.dependency-cruiser.cjs, docs/architecture.md):
 * it passes on our tree, and it fails on a tree with an import up a layer or an import cycle,
 * type-only imports included (a check that could not fail would prove nothing).
 */

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DEPCRUISE = path.join(ROOT, 'node_modules/.bin/depcruise');
const CONFIG = path.join(ROOT, '.dependency-cruiser.cjs');

function cruise(cwd: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(DEPCRUISE, ['src', '--config', CONFIG], { cwd }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : Number(error.code ?? 1), output: stdout + stderr });
    });
  });
}

/** A throwaway project whose src/ holds `files` (path → source). */
function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'popcorn-layers-'));
  writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true }, include: ['src'] }));
  for (const [file, source] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    writeFileSync(path.join(dir, file), source);
  }
  return dir;
}

test('our tree keeps its layers and has no import cycle', async () => {
  const { code, output } = await cruise(ROOT);
  assert.equal(code, 0, output);
  assert.match(output, /no dependency violations/);
});

test('an import up a layer fails the check, even a type-only one', async () => {
  const dir = tree({
    'src/kernel/kernel.ts': 'export class Kernel {}\n',
    'src/msg/messenger.ts': "import type { Kernel } from '../kernel/kernel.js';\nexport type Owner = Kernel;\n",
  });
  try {
    const { code, output } = await cruise(dir);
    assert.notEqual(code, 0);
    assert.match(output, /msg-is-the-bottom: src\/msg\/messenger\.ts → src\/kernel\/kernel\.ts/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an import cycle fails the check', async () => {
  const dir = tree({
    'src/services/a.ts': "import { b } from './b.js';\nexport const a = (): number => b() + 1;\n",
    'src/services/b.ts': "import { a } from './a.js';\nexport const b = (): number => a() - 1;\n",
  });
  try {
    const { code, output } = await cruise(dir);
    assert.notEqual(code, 0);
    assert.match(output, /no-cycles: src\/services\/(a|b)\.ts/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
