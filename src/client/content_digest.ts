/**
 * `send --checksum` (PROTOCOL.md §9.3): each file's digest, the session's, read from its source
 * before the file is announced. Kept apart from the pipeline because it reads files through Deno;
 * the browser's sender (src/web/) shares the pipeline and never compares content.
 */
import type { Digest } from "../protocol/digests.ts";
import type { Numbered } from "./send_types.ts";

/** Gives a file entry its digest (hex); returns why it could not be read, or null. */
export type ContentDigest = (entry: Numbered) => Promise<string | null>;

/**
 * A ContentDigest with `digest`, reading one file at a time through one reused buffer, and
 * calling `keepAlive` after each piece (a large file can take longer than the peer's timeout).
 */
export function contentDigest(digest: Digest, keepAlive: () => Promise<void>): ContentDigest {
  let buf: Uint8Array | null = null;
  return (entry) => {
    buf ??= new Uint8Array(CHECKSUM_READ_BYTES);
    return withDigest(entry, digest, buf, keepAlive);
  };
}

/** How much of a file `--checksum` reads at a time for its digest. */
const CHECKSUM_READ_BYTES = 1024 * 1024;

/**
 * Gives `entry` (a file with a source) its digest, the session's, read in pieces (memory does
 * not grow with the file): what `--checksum` announces. Returns why it could not be read, or
 * null. A file that changes after this is caught as always, when its data is sent.
 */
async function withDigest(
  entry: Numbered,
  digest: Digest,
  buf: Uint8Array,
  keepAlive: () => Promise<void>,
): Promise<string | null> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(entry.source!, { read: true });
  } catch (err) {
    return `cannot be read: ${err instanceof Error ? err.message : String(err)}`;
  }
  try {
    const hash = digest.hasher();
    for (;;) {
      let n: number | null;
      try {
        n = await file.read(buf);
      } catch (err) {
        return `cannot be read: ${err instanceof Error ? err.message : String(err)}`;
      }
      if (n === null) break;
      hash.update(buf.subarray(0, n));
      await keepAlive();
    }
    let hex = "";
    for (const b of hash.digest()) hex += b.toString(16).padStart(2, "0");
    entry.digest = hex;
    return null;
  } finally {
    file.close();
  }
}
