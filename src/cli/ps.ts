/** `popcorn ps [--json]`: every process of every kernel of the running node. */

import { controlRequest } from '../node/control-client.js';

export async function psCommand(options: { json?: boolean }): Promise<number> {
  const answer = await controlRequest({ op: 'ps' });
  const processes = answer.processes;
  if (options.json === true) {
    process.stdout.write(`${JSON.stringify(processes)}\n`);
    return 0;
  }
  const rows = processes.map((p) => [String(p.pid), String(p.ppid), String(p.kernel), p.state, p.cpu_ms.toFixed(0), formatBytes(p.memory_bytes), p.command]);
  process.stdout.write(table(['PID', 'PPID', 'KERNEL', 'STATE', 'CPU_MS', 'MEMORY', 'COMMAND'], rows));
  return 0;
}

export function formatBytes(n: number): string {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(1)}G`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)}M`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(0)}K`;
  return String(n);
}

/** Columns padded to their widest cell; the last one left ragged. */
export function table(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ')).join('\n') + '\n';
}
