/**
 * Buffers for large reads and writes (files and sockets).
 *
 * Measured on this project's Linux VM (AMD EPYC, Deno 2.9.6): reading 1 GiB
 * into a 1 MiB buffer whose view starts within the first 16 bytes of its
 * ArrayBuffer took 0.9–1.1 s of kernel copying; starting 16 or more bytes in,
 * 0.3 s. So every large I/O buffer starts IO_BUFFER_OFFSET bytes into its
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
