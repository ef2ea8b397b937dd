/**
 * The web dashboard in a real browser (Chromium through playwright-core): a node running real
 * programs; the page shows its processes, a migration asked from the page appears in the table,
 * the timeline and the message matrix, a kill from the page ends a process, and requests without
 * the token are refused. Skips itself where no Chromium is installed (apt-get install chromium).
 * The screenshot goes to $POPCORN_DASHBOARD_SCREENSHOT (docs/img/dashboard.png is one).
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { WebSocket } from 'ws';
import { SPIN, bootObserved, eventually } from './observe-helpers.js';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** The state of pid's row in the process table, or undefined while it has none. */
async function rowOf(page: Page, pid: number): Promise<{ kernel: string; state: string } | undefined> {
  const row = await page.$(`#processes tr[data-pid="${pid}"]`);
  if (row === null) return undefined;
  return { kernel: (await row.getAttribute('data-kernel')) ?? '', state: (await row.getAttribute('data-state')) ?? '' };
}

test('dashboard: processes, a migration from the page, the message matrix, kill, the token', async (t) => {
  if (CHROMIUM === undefined) {
    t.skip('no Chromium at /usr/bin/chromium (apt-get install chromium)');
    return;
  }
  const node = await bootObserved(2);
  const profile = mkdtempSync(join(tmpdir(), 'popcorn-chromium-'));
  // A fresh profile (playwright passes it as --user-data-dir).
  const browser = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: ARGS, viewport: { width: 1280, height: 900 } });
  try {
    const a = await node.start([...SPIN, 'a'], 0);
    const b = await node.start([...SPIN, 'b'], 1);
    const c = await node.start(['examples/test/migrate.wasm', 'compute', '100000000000', '0'], 0);

    // Without the token: refused, the page, the API and the push channel alike.
    assert.equal((await fetch(`${node.base}/`)).status, 401);
    assert.equal((await fetch(`${node.base}/api/snapshot?token=nope`)).status, 403);
    assert.equal((await fetch(`${node.base}/api/kill`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ pid: a, signal: 9 }) })).status, 401);
    const refused = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`${node.base.replace('http', 'ws')}/live`);
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => resolve(101));
      ws.on('error', () => undefined);
    });
    assert.equal(refused, 401);

    const page = await browser.newPage();
    await page.goto(node.url);
    for (const pid of [a, b, c]) await eventually(`pid ${pid} on the page`, () => rowOf(page, pid));
    assert.equal((await rowOf(page, a))?.kernel, '0');
    assert.equal((await rowOf(page, b))?.kernel, '1');
    assert.match(await page.textContent('#kernels tbody') ?? '', /0\s*0/);

    // Migrate a from the page: the select offers kernel 1, the button moves it.
    await page.selectOption(`#processes tr[data-pid="${a}"] select`, '1');
    await page.click(`#processes tr[data-pid="${a}"] button[data-action="migrate"]`);
    await eventually('a on kernel 1', async () => ((await rowOf(page, a))?.kernel === '1' ? true : undefined));
    await eventually('the migration on the timeline', async () =>
      new RegExp(`migrate pid ${a} k0 → k1`).test(await page.textContent('#timeline') ?? '') ? true : undefined);
    const cell = Number(await page.textContent('#matrix td[data-from="0"][data-to="1"]'));
    assert.ok(cell >= 1, `kernel 0 sent kernel 1 ${cell} messages`);
    // Coloured: opaque (the busiest pair) or a non-zero alpha.
    assert.match(await page.getAttribute('#matrix td[data-from="0"][data-to="1"]', 'style') ?? '', /background: (rgb\(220, 60, 20\)|rgba\(220, 60, 20, 0\.\d*[1-9]\d*\))/);

    // Stop and continue b, then kill it, from the page.
    await page.click(`#processes tr[data-pid="${b}"] button[data-action="stop"]`);
    await eventually('b stopped', async () => ((await rowOf(page, b))?.state === 'stopped' ? true : undefined));
    await page.click(`#processes tr[data-pid="${b}"] button[data-action="continue"]`);
    await eventually('b running again', async () => (/^(running|runnable)$/.test((await rowOf(page, b))?.state ?? '') ? true : undefined));
    await page.click(`#processes tr[data-pid="${b}"] button[data-action="kill"]`);
    await eventually('b gone', async () => ((await rowOf(page, b)) === undefined ? true : undefined));
    assert.match(await page.textContent('#timeline') ?? '', new RegExp(`exit    pid ${b} on k1, status \\d+, signal 9`));
    const ps = await node.cli(['ps', '--json']);
    assert.ok(!(JSON.parse(ps.stdout) as { pid: number }[]).some((p) => p.pid === b), ps.stdout);

    // Let the charts gather a few points, then keep a picture.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const shot = process.env.POPCORN_DASHBOARD_SCREENSHOT ?? join(profile, 'dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok(existsSync(shot));
  } finally {
    await browser.close();
    rmSync(profile, { recursive: true, force: true });
    await node.cleanup();
  }
});
