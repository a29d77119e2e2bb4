/** An in-memory ByteStream for the framing and secure-channel tests. */
import type { ByteStream } from "../src/transport/byte_stream.ts";

/**
 * A ByteStream over fixed `input` that hands out at most `step` bytes per
 * read (to split frames and records at odd places), and keeps what is written.
 */
export function memoryStream(
  input: Uint8Array,
  step = 1 << 30,
): ByteStream & { written: Uint8Array[] } {
  let offset = 0;
  const written: Uint8Array[] = [];
  return {
    written,
    read(p) {
      if (offset >= input.length) return Promise.resolve(null);
      const n = Math.min(step, p.length, input.length - offset);
      p.set(input.subarray(offset, offset + n));
      offset += n;
      return Promise.resolve(n);
    },
    write(p) {
      written.push(p.slice());
      return Promise.resolve(p.length);
    },
    close() {},
  };
}
