/**
 * Makes the module's memory one the runtime gives it: imported (popcorn_rt.memory) and shared,
 * so that a process migrating to another kernel of the same node takes its memory along by
 * reference. Copying is what made migration cost grow with memory (a 256 MiB process took
 * 0.4 s, most of it the kernel allocating and filling fresh pages); a shared memory is handed to
 * the other kernel's thread, and the process's new instance there imports it as it is.
 *
 * Instantiation must then not write the module's data into the memory it imports: a live one
 * holds what the program has made of those bytes since. So active data segments become passive,
 * and an exported function (INIT_MEMORY_EXPORT) copies them in; the runtime calls it for a new
 * process only. A start function would run during instantiation, before that, and again against
 * a live memory: a module with one keeps its segments active and is marked not to hand its memory
 * over (MemoryLayout.handover; it is copied instead).
 */
import binaryen from 'binaryen';
import { INIT_MEMORY_EXPORT, MEMORY_IMPORT, MEMORY_SECTION, RUNTIME_MODULE, SCRATCH_PAGES, type MemoryLayout } from './abi.js';

/** binaryen.js has these at run time; its index.d.ts does not declare them. */
interface DataSegmentInfo {
  name: string;
  offset: number | null;
  data: ArrayBuffer;
  passive: boolean;
}
interface DataSegments {
  getNumDataSegments(): number;
  getDataSegmentInfo(segment: binaryen.DataSegmentRef): DataSegmentInfo;
}

/** The largest wasm32 memory, in pages. */
const MAX_PAGES = 65536;
const INIT_FUNC = 'popcorn$init_memory';

/**
 * Turns the defined memory named `name` into an imported shared one (see the top of this file)
 * and records its layout in MEMORY_SECTION. `initial` stays the module's; the maximum makes room
 * for the scratch pages above the program's own maximum, as far as wasm32 allows.
 */
export function importSharedMemory(module: binaryen.Module, name: string): MemoryLayout {
  const memory = module.getMemoryInfo();
  const layout: MemoryLayout = {
    initial: memory.initial,
    maximum: Math.min(MAX_PAGES, (memory.max ?? MAX_PAGES) + SCRATCH_PAGES),
    handover: module.getStart() === 0,
  };
  const segments = dataSegments(module);
  const moved = layout.handover ? segments.filter((s) => !s.passive) : [];
  // setMemory replaces the memory and every data segment; the names stay, so the program's own
  // memory.init and data.drop still find theirs.
  module.setMemory(layout.initial, layout.maximum, null, segments.map((s) => ({
    name: s.name,
    data: new Uint8Array(s.data),
    offset: s.passive || moved.includes(s) ? 0 : module.i32.const(s.offset ?? 0),
    passive: s.passive || moved.includes(s),
  })), true, false, name);
  module.addMemoryImport(name, RUNTIME_MODULE, MEMORY_IMPORT, true);
  module.setFeatures(module.getFeatures() | binaryen.Features.Atomics | binaryen.Features.BulkMemory);
  addInitFunction(module, name, moved);
  module.addCustomSection(MEMORY_SECTION, new TextEncoder().encode(JSON.stringify(layout)));
  return layout;
}

function dataSegments(module: binaryen.Module): DataSegmentInfo[] {
  const all = module as unknown as DataSegments;
  const segments: DataSegmentInfo[] = [];
  for (let i = 0; i < all.getNumDataSegments(); i++) segments.push(all.getDataSegmentInfo(module.getDataSegmentByIndex(i)));
  return segments;
}

/** INIT_MEMORY_EXPORT: what instantiation did with the segments made passive, then drop them. */
function addInitFunction(module: binaryen.Module, memory: string, moved: DataSegmentInfo[]): void {
  const body = moved.flatMap((s) => [
    module.memory.init(s.name, module.i32.const(s.offset ?? 0), module.i32.const(0), module.i32.const(s.data.byteLength), memory),
    module.data.drop(s.name),
  ]);
  module.addFunction(INIT_FUNC, binaryen.none, binaryen.none, [], module.block(null, body, binaryen.none));
  module.addFunctionExport(INIT_FUNC, INIT_MEMORY_EXPORT);
}
