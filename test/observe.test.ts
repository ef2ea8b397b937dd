/**
 * Observing a node: the counters behind kernel_stats, /metrics (Prometheus text, token needed),
 * and `popcorn top` — its plain snapshot off a terminal, and the live view under a pseudo-terminal
 * (tmux), which quits on `q`.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { CLI, TEST_CACHE } from './cli-helpers.js';
import { SPIN, bootObserved, eventually } from './observe-helpers.js';

test('/metrics: token required; CPU, messages by type and peer, migrations and their latency', async () => {
  const node = await bootObserved(2);
  try {
    const pid = await node.start(SPIN, 0);
    const moved = await node.cli(['migrate', String(pid), '1']);
    assert.equal(moved.status, 0, moved.stderr);

    assert.equal((await fetch(`${node.base}/metrics`)).status, 401);
    assert.equal((await fetch(`${node.base}/metrics?token=wrong`)).status, 403);
    assert.equal((await fetch(`${node.base}/metrics`, { headers: { authorization: 'Bearer wrong' } })).status, 403);
    const res = await fetch(`${node.base}/metrics`, { headers: { authorization: `Bearer ${node.token}` } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    const text = await res.text();
    const value = (pattern: string): number => {
      const m = new RegExp(`^${pattern} (\\S+)$`, 'm').exec(text);
      assert.ok(m !== null, `${pattern} in\n${text}`);
      return Number(m[1]);
    };
    assert.ok(value('popcorn_kernel_cpu_seconds_total\\{kernel="1"\\}') > 0);
    assert.equal(value('popcorn_kernel_processes\\{kernel="1"\\}'), 1);
    assert.equal(value('popcorn_kernel_migrations_total\\{kernel="0",direction="out"\\}'), 1);
    assert.equal(value('popcorn_kernel_migrations_total\\{kernel="1",direction="in"\\}'), 1);
    assert.equal(value('popcorn_migration_seconds_count\\{kernel="1"\\}'), 1);
    assert.equal(value('popcorn_spawn_seconds_count\\{kernel="0"\\}'), 1);
    assert.ok(value('popcorn_messages_total\\{kernel="0",type="proc_migrate",direction="sent"\\}') >= 1);
    assert.ok(value('popcorn_messages_total\\{kernel="1",type="proc_migrate",direction="received"\\}') >= 1);
    assert.ok(value('popcorn_message_bytes_total\\{kernel="0",type="proc_migrate",direction="sent"\\}') > 0);
    // Kernel 1's endpoint is 1: kernel 0 sent it at least the migration.
    assert.ok(value('popcorn_peer_messages_total\\{kernel="0",peer="1",direction="sent"\\}') >= 1);
    assert.ok(value(`popcorn_process_cpu_seconds\\{pid="${pid}",kernel="1",name="spin.wasm"\\}`) > 0);
    assert.equal(value('popcorn_cluster_links_up'), 0);
  } finally {
    await node.cleanup();
  }
});

test('popcorn top: a plain snapshot when stdout is not a terminal', async () => {
  const node = await bootObserved(2);
  try {
    const pid = await node.start(SPIN, 0);
    assert.equal((await node.cli(['migrate', String(pid), '1'])).status, 0);
    const top = await node.cli(['top', '--interval', '200']);
    assert.equal(top.status, 0, top.stderr);
    assert.ok(!top.stdout.includes('\x1b['), 'no escape sequences off a terminal');
    assert.match(top.stdout, /^popcorn top — node 0, 2 kernels, 1 processes/);
    assert.match(top.stdout, /KERNEL\s+NODE\s+CPU%\s+RUNQ/);
    assert.match(top.stdout, new RegExp(`^${pid}\\s+1\\s+(running|runnable)\\s+\\d+\\.\\d`, 'm'));
    assert.match(top.stdout, new RegExp(`pid ${pid}  kernel 0 → 1  \\d+\\.\\d\\d ms`));
  } finally {
    await node.cleanup();
  }
});

test('popcorn top: live in a terminal, redrawn in place, quits on q', async (t) => {
  if (spawnSync('tmux', ['-V']).status !== 0) {
    t.skip('tmux is not installed (apt-get install tmux)');
    return;
  }
  const node = await bootObserved(1);
  const tmux = (...args: string[]): string => spawnSync('tmux', ['-L', `popcorn-top-${process.pid}`, ...args], { encoding: 'utf8' }).stdout;
  try {
    const pid = await node.start(SPIN, 0);
    const env = `POPCORN_RUNTIME_DIR=${node.env.POPCORN_RUNTIME_DIR} POPCORN_CACHE_DIR=${TEST_CACHE}`;
    tmux('new-session', '-d', '-x', '120', '-y', '30', `env ${env} ${process.execPath} ${CLI} top --interval 200; echo "top exited $?"; sleep 60`);
    const screen = await eventually('top to draw', async () => {
      const pane = tmux('capture-pane', '-p');
      return /RECENT MIGRATIONS/.test(pane) && new RegExp(`^${pid}\\s+0\\s+running\\s+\\d`, 'm').test(pane) ? pane : undefined;
    });
    // In place: one frame on the screen, at its top.
    assert.match(screen, /^popcorn top — node 0, 1 kernels/);
    assert.equal(screen.match(/popcorn top —/g)?.length, 1);
    tmux('send-keys', 'q');
    await eventually('top to quit on q', async () => (/top exited 0/.test(tmux('capture-pane', '-p')) ? true : undefined), 5_000);
  } finally {
    tmux('kill-server');
    await node.cleanup();
  }
});
