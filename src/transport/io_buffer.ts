/**
 * Buffers for large reads and writes (files and sockets).
 *
 * On some CPUs (an AMD EPYC here) the kernel copies into a buffer several
 * times slower when its view starts within the first few bytes of its
 * ArrayBuffer, an alignment effect of `rep movsb` (docs/PERFORMANCE.md). So
 * every large I/O buffer starts IO_BUFFER_OFFSET bytes into its
 * allocation. It costs 64 bytes a buffer, and nothing where the effect is absent.
 */

/** How far into its allocation an I/O buffer starts. */
export const IO_BUFFER_OFFSET = 64;

/**
 * A zeroed buffer of `size` bytes for large I/O. `lead` bytes that go before
 * the data (a frame header) come before the offset, so the data itself starts
 * IO_BUFFER_OFFSET bytes in.
 */
export function ioBuffer(size: number, lead = 0): Uint8Array {
  if (!(lead >= 0 && lead <= IO_BUFFER_OFFSET)) throw new RangeError("lead is 0 to 64 bytes");
  const start = IO_BUFFER_OFFSET - lead;
  return new Uint8Array(start + size).subarray(start);
}
