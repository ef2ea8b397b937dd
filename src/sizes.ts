/** Sizes in bytes as people write and read them (options, environment variables, messages). */

/** `65536`, `256M`, `1G`: a number with an optional K, M, G or T (powers of 1024); undefined if not one. */
export function parseByteSize(text: string): number | undefined {
  const m = /^(\d+)([KMGT]?)$/i.exec(text.trim());
  if (m === null) return undefined;
  return Number(m[1]) * 1024 ** ' KMGT'.indexOf((m[2] ?? '').toUpperCase() || ' ');
}

/** Bytes as KiB, MiB or GiB. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}
