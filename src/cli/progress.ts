/**
 * How the popcorn command shows a long instrumentation: a bar redrawn in place on a terminal,
 * plain lines at every tenth otherwise (a log or a pipe gets no carriage returns).
 */
import { formatBytes } from '../sizes.js';
import { describePrepareEvent, type PrepareEvent } from '../wasm/loader.js';

const BAR_WIDTH = 30;

/** A PrepareOptions.onProgress that reports on `stream` (stderr, usually). */
export function instrumentProgress(stream: NodeJS.WriteStream = process.stderr): (event: PrepareEvent) => void {
  return stream.isTTY ? barOn(stream) : linesOn(stream);
}

function barOn(stream: NodeJS.WriteStream): (event: PrepareEvent) => void {
  let label = '';
  return (event) => {
    if (event.kind === 'instrumenting') label = `popcorn: instrumenting ${event.name} (${formatBytes(event.bytes)})`;
    if (event.kind === 'done') {
      stream.write(`\r\x1b[K${label}: done in ${event.seconds.toFixed(1)} s\n`);
      return;
    }
    const fraction = event.kind === 'progress' ? event.fraction : 0;
    const filled = Math.round(fraction * BAR_WIDTH);
    stream.write(`\r\x1b[K${label} [${'#'.repeat(filled)}${' '.repeat(BAR_WIDTH - filled)}] ${Math.floor(fraction * 100)}%`);
  };
}

function linesOn(stream: NodeJS.WriteStream): (event: PrepareEvent) => void {
  let tenths = 0;
  return (event) => {
    if (event.kind === 'progress') {
      const reached = Math.floor(event.fraction * 10);
      if (reached <= tenths || reached >= 10) return;
      tenths = reached;
      stream.write(`popcorn: instrumenting ${event.name}: ${reached * 10}%\n`);
      return;
    }
    stream.write(`popcorn: ${describePrepareEvent(event) ?? ''}\n`);
  };
}
