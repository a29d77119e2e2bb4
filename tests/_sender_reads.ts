/**
 * Walks a folder and sends each file it lists into memory, as `ferry send`
 * does, and says what went out: run in the test process (with the C
 * library) and as its own process without the ffi permission (Deno's API),
 * the two must agree (tests/sender_reads_test.ts).
 *
 * As a program: `deno run --allow-read _sender_reads.ts DIR` prints the
 * JSON of `walkAndSend(DIR)`.
 */
import { createHash } from "node:crypto";
import { FileSender } from "../src/client/file_sender.ts";
import { loadNativeReader } from "../src/native/native_read.ts";
import type { Numbered } from "../src/client/send_types.ts";
import { resolveSources, walk } from "../src/client/walk.ts";
import { loadDigest } from "../src/protocol/digests.ts";
import { decodeFileAbort, decodeFileEnd, FrameType } from "../src/protocol/frame.ts";
import type { ByteStream } from "../src/transport/byte_stream.ts";
import { FrameReader, FrameWriter } from "../src/transport/frame_io.ts";

/** One walk item, and for a file what its frames said. */
export interface Outcome {
  item: string;
  path: string;
  /** The SHA-256 of the DATA frames' bytes, and FILE_END's digest or FILE_ABORT's reason. */
  data?: string;
  end?: string;
  abort?: string;
}

export interface WalkAndSend {
  native: boolean;
  outcomes: Outcome[];
}

/** Everything written to it, kept. */
class Sink implements ByteStream {
  readonly chunks: Uint8Array[] = [];
  read(): Promise<number | null> {
    return Promise.resolve(null);
  }
  write(p: Uint8Array): Promise<number> {
    this.chunks.push(p.slice());
    return Promise.resolve(p.length);
  }
  close(): void {}
}

/** Walks `dir` and sends every file it lists; `change` runs before each file is sent. */
export async function walkAndSend(
  dir: string,
  change: (entry: Numbered) => void = () => {},
): Promise<WalkAndSend> {
  const digest = await loadDigest("sha256");
  const outcomes: Outcome[] = [];
  const sink = new Sink();
  const writer = new FrameWriter(sink);
  const files = new FileSender(writer, digest, () => {});
  const entries: Numbered[] = [];
  let id = 0;
  for await (const item of walk(await resolveSources([dir], "stdin"))) {
    if (item.type !== "entry") {
      outcomes.push({ item: item.type, path: item.path });
      continue;
    }
    outcomes.push({ item: item.entry.kind, path: item.entry.path });
    if (item.entry.kind === "file") entries.push({ ...item.entry, id: id++ });
  }
  for (const entry of entries) {
    change(entry);
    await files.send(entry, 0, undefined);
  }
  files.close();
  await writer.flush();
  const bytes = new Uint8Array(sink.chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of sink.chunks) (bytes.set(c, at), at += c.length);
  let read = 0;
  const reader = new FrameReader({
    read(p) {
      if (read >= bytes.length) return Promise.resolve(null);
      const n = Math.min(p.length, bytes.length - read);
      p.set(bytes.subarray(read, read + n));
      read += n;
      return Promise.resolve(n);
    },
    write: () => Promise.resolve(0),
    close() {},
  });
  let data = createHash("sha256");
  for (let frame = await reader.next(); frame !== null; frame = await reader.next()) {
    if (frame.type === FrameType.DATA) {
      data.update(frame.payload);
      continue;
    }
    const ended = frame.type === FrameType.FILE_END
      ? decodeFileEnd(frame.payload)
      : decodeFileAbort(frame.payload);
    const path = entries[ended.id]!.path;
    const outcome = outcomes.find((o) => o.item === "file" && o.path === path)!;
    outcome.data = data.digest("hex");
    data = createHash("sha256");
    if ("digest" in ended) outcome.end = Array.from(ended.digest, (b) => b.toString(16)).join("");
    else outcome.abort = ended.reason;
  }
  outcomes.sort((a, b) => a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
  return { native: loadNativeReader() !== null, outcomes };
}

if (import.meta.main) console.log(JSON.stringify(await walkAndSend(Deno.args[0]!)));
