/**
 * What the framing runs on. A Deno.Conn is one; the secure channel will be
 * another, wrapping a Deno.Conn, so the frames above never change.
 */
export interface ByteStream {
  /** Reads into `p`; resolves to the count, or null at end of stream. */
  read(p: Uint8Array): Promise<number | null>;
  /** Writes some of `p`; resolves to the count written. */
  write(p: Uint8Array): Promise<number>;
  close(): void;
  /** Closes the sending direction only (TCP half-close), if the stream can. */
  closeWrite?(): Promise<void>;
}

/** Writes all of `p`. */
export async function writeAll(stream: ByteStream, p: Uint8Array): Promise<void> {
  let done = 0;
  while (done < p.length) done += await stream.write(p.subarray(done));
}

/**
 * Ends a stream politely after a final message: half-closes, then drains
 * what the peer still sends for up to `ms` (so the peer reads our last words
 * instead of a reset), then closes.
 */
export async function closeGracefully(stream: ByteStream, ms = 1000): Promise<void> {
  const timer = setTimeout(() => {
    try {
      stream.close();
    } catch { /* already closed */ }
  }, ms);
  try {
    await stream.closeWrite?.();
    const sink = new Uint8Array(64 * 1024);
    while ((await stream.read(sink)) !== null) { /* drain */ }
  } catch {
    /* closed by the timer or the peer */
  } finally {
    clearTimeout(timer);
    try {
      stream.close();
    } catch { /* already closed */ }
  }
}
