/**
 * Typed errors of the wasm layer. A refused module must never take a kernel down (DESIGN
 * invariant 6): the loader throws these, and whoever started the program reports `message`.
 */

/** A module popcorn refuses to run: invalid, or outside what the runtime provides. */
export class ModuleError extends Error {
  override readonly name = 'ModuleError';

  /**
   * @param source the module's path, or a short description where it came from bytes
   * @param reason what is wrong, naming the offending import, export or instruction
   */
  constructor(
    readonly source: string,
    readonly reason: string,
  ) {
    super(`${source}: ${reason}`);
  }
}
