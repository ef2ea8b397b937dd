/**
 * Turning a wasm trap into the report a user expects from wasmtime: the trap reason in
 * wasmtime's words and a wasm backtrace with function names (from the module's name section,
 * which the instrumenter keeps). V8 gives us the trap as a RuntimeError whose stack holds frames
 * like `at level_three (wasm://wasm/8c5ff9f2:wasm-function[3]:0x11e)`.
 */

/** wasmtime exits with 128 + SIGABRT when the program traps. */
export const TRAP_EXIT_STATUS = 134;

const REASONS: [RegExp, string][] = [
  [/unreachable/i, 'wasm `unreachable` instruction executed'],
  [/memory access out of bounds|out of bounds memory/i, 'out of bounds memory access'],
  [/divide by zero|division by zero|remainder by zero/i, 'integer divide by zero'],
  [/integer overflow/i, 'integer overflow'],
  [/float unrepresentable|invalid conversion/i, 'invalid conversion to integer'],
  [/call stack|stack overflow/i, 'call stack exhausted'],
  [/signature mismatch|null function/i, 'indirect call type mismatch'],
  [/table index is out of bounds|table access/i, 'undefined element: out of bounds table access'],
];

/** One wasm frame of a backtrace. */
export interface WasmFrame {
  func: number;
  offset: number;
  name?: string;
}

const FRAME = /at (?:(\S+) \()?wasm:\/\/wasm\/[^:]*:wasm-function\[(\d+)\]:(0x[0-9a-f]+)\)?/;

/** The wasm frames of an error's stack, innermost first. */
export function wasmFrames(error: Error): WasmFrame[] {
  const frames: WasmFrame[] = [];
  for (const line of (error.stack ?? '').split('\n')) {
    const m = FRAME.exec(line);
    if (m === null) continue;
    const name = m[1] !== undefined && !/^\$?\d+$/.test(m[1]) ? m[1].replace(/^\$/, '') : undefined;
    frames.push({ func: Number(m[2]), offset: parseInt(m[3], 16), name });
  }
  return frames;
}

/** The trap reason in wasmtime's words, or the engine's own message when we know no better. */
export function trapReason(error: Error): string {
  for (const [pattern, reason] of REASONS) if (pattern.test(error.message)) return reason;
  return error.message;
}

/** The report printed to stderr, shaped like wasmtime's. */
export function formatTrap(moduleName: string, error: Error): string {
  const lines = [`Error: failed to run main module \`${moduleName}\``, '', 'Caused by:', '    0: failed to invoke command default'];
  const frames = wasmFrames(error);
  if (frames.length > 0) {
    lines.push('    1: error while executing at wasm backtrace:');
    frames.forEach((f, i) => {
      const where = f.name ?? `<wasm function ${f.func}>`;
      lines.push(`           ${String(i).padStart(2)}: ${('0x' + f.offset.toString(16)).padStart(8)} - ${moduleName}!${where}`);
    });
    lines.push(`    2: wasm trap: ${trapReason(error)}`);
  } else {
    lines.push(`    1: wasm trap: ${trapReason(error)}`);
  }
  return lines.join('\n') + '\n';
}
