/**
 * The sender's file sender alone (src/client/file_sender.ts), writing into
 * memory: the frames of one file, small and large, resumed or not, and the
 * FILE_ABORT of a file that changed or cannot be read.
 */
import { assert, assertEquals } from "@std/assert";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { FileSender, type Readable } from "../src/client/file_sender.ts";
import type { Numbered, SendEvent } from "../src/client/send_types.ts";
import { loadDigest } from "../src/protocol/digests.ts";
import {
  decodeFileAbort,
  decodeFileEnd,
  decodeFileStart,
  FrameType,
} from "../src/protocol/frame.ts";
import { MAX_FRAME_PAYLOAD } from "../src/protocol/limits.ts";
import type { ByteStream } from "../src/transport/byte_stream.ts";
import { FrameReader, FrameWriter } from "../src/transport/frame_io.ts";

/** What went out for one file: FILE_START's offset, the data, and how it ended. */
interface Sent {
  start: number | null;
  dataFrames: number;
  data: Uint8Array;
  end: { length: number; digest: string } | null;
  abort: string | null;
}

/** A ByteStream that keeps what is written. */
function sink(): ByteStream & { bytes(): Uint8Array } {
  const chunks: Uint8Array[] = [];
  return {
    read: () => Promise.resolve(null),
    write(p) {
      chunks.push(p.slice());
      return Promise.resolve(p.length);
    },
    close() {},
    bytes() {
      const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
      let at = 0;
      for (const c of chunks) (out.set(c, at), at += c.length);
      return out;
    },
  };
}

/** Reads back the frames `bytes` hold, for the file `id`. */
async function framesOf(bytes: Uint8Array, id: number): Promise<Sent> {
  let at = 0;
  const reader = new FrameReader({
    read(p) {
      if (at >= bytes.length) return Promise.resolve(null);
      const n = Math.min(p.length, bytes.length - at);
      p.set(bytes.subarray(at, at + n));
      at += n;
      return Promise.resolve(n);
    },
    write: () => Promise.resolve(0),
    close() {},
  });
  const sent: Sent = {
    start: null,
    dataFrames: 0,
    data: new Uint8Array(0),
    end: null,
    abort: null,
  };
  const data: Uint8Array[] = [];
  for (let frame = await reader.next(); frame !== null; frame = await reader.next()) {
    assert(sent.end === null && sent.abort === null, "nothing after the file's end");
    if (frame.type === FrameType.FILE_START) {
      const start = decodeFileStart(frame.payload);
      assertEquals(start.id, id);
      sent.start = start.offset;
    } else if (frame.type === FrameType.DATA) {
      sent.dataFrames++;
      data.push(frame.payload.slice());
    } else if (frame.type === FrameType.FILE_END) {
      const end = decodeFileEnd(frame.payload);
      assertEquals(end.id, id);
      sent.end = { length: end.length, digest: hex(end.digest) };
    } else if (frame.type === FrameType.FILE_ABORT) {
      const abort = decodeFileAbort(frame.payload);
      assertEquals(abort.id, id);
      sent.abort = abort.reason;
    } else {
      throw new Error(`unexpected frame ${frame.type}`);
    }
  }
  sent.data = new Uint8Array(data.reduce((n, c) => n + c.length, 0));
  let to = 0;
  for (const c of data) (sent.data.set(c, to), to += c.length);
  return sent;
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Random-ish bytes, different at every position of a frame. */
function content(size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (i * 31 + (i >> 11)) & 0xff;
  return out;
}

/** A file in a temporary folder, and its entry as the walk lists it. */
async function listed(dir: string, name: string, bytes: Uint8Array, id = 7): Promise<Numbered> {
  const source = join(dir, name);
  await Deno.writeFile(source, bytes);
  const info = await Deno.stat(source);
  return {
    id,
    path: name,
    source,
    kind: "file",
    size: info.size,
    mtime: info.mtime!.getTime(),
    mode: 0o644,
  };
}

/** Sends `entry` with a fresh sender and reads back its frames and events. */
async function sendOne(
  entry: Numbered,
  offer = 0,
  prefix?: string,
  stdin?: Readable,
): Promise<{ sent: Sent; events: SendEvent[] }> {
  const out = sink();
  const writer = new FrameWriter(out);
  const events: SendEvent[] = [];
  const files = new FileSender(
    writer,
    await loadDigest("sha256"),
    (e) => events.push(e),
    () => false,
    stdin,
  );
  await files.send(entry, offer, prefix);
  await writer.flush();
  return { sent: await framesOf(out.bytes(), entry.id), events };
}

async function withDir(run: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ferry-file-sender-" });
  try {
    await run(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("file sender: a small file is one DATA frame and FILE_END with its digest", async () => {
  await withDir(async (dir) => {
    const bytes = content(5000);
    const { sent, events } = await sendOne(await listed(dir, "a.bin", bytes));
    assertEquals(sent.start, null);
    assertEquals(sent.dataFrames, 1);
    assertEquals(sent.data, bytes);
    assertEquals(sent.end, { length: 5000, digest: sha256(bytes) });
    assertEquals(events, [
      { type: "file-start", path: "a.bin", size: 5000, resumed: 0 },
      { type: "progress", bytes: 5000 },
    ]);
  });
});

Deno.test("file sender: an empty file is FILE_END alone", async () => {
  await withDir(async (dir) => {
    const { sent, events } = await sendOne(await listed(dir, "empty", new Uint8Array(0)));
    assertEquals(sent.dataFrames, 0);
    assertEquals(sent.end, { length: 0, digest: sha256(new Uint8Array(0)) });
    assertEquals(events, [{ type: "file-start", path: "empty", size: 0, resumed: 0 }]);
  });
});

Deno.test("file sender: a small file declines a resume offer and goes whole", async () => {
  await withDir(async (dir) => {
    const bytes = content(MAX_FRAME_PAYLOAD);
    const entry = await listed(dir, "one-frame.bin", bytes);
    const { sent } = await sendOne(entry, 1000, sha256(bytes.subarray(0, 1000)));
    assertEquals(sent.start, 0);
    assertEquals(sent.dataFrames, 1);
    assertEquals(sent.data.length, MAX_FRAME_PAYLOAD);
    assertEquals(sent.end?.length, MAX_FRAME_PAYLOAD);
  });
});

Deno.test("file sender: a small file that changed since the listing is aborted", async () => {
  await withDir(async (dir) => {
    const grown = await listed(dir, "grown.txt", content(3));
    await Deno.writeFile(grown.source!, content(5));
    const shrunk = await listed(dir, "shrunk.txt", content(5));
    await Deno.writeFile(shrunk.source!, content(3));
    const touched = await listed(dir, "touched.txt", content(4));
    await Deno.utime(touched.source!, 1, 1);
    for (
      const [entry, reason] of [
        [grown, "it changed after it was listed"],
        [shrunk, "it shrank while being sent"],
        [touched, "it changed after it was listed"],
      ] as const
    ) {
      const { sent, events } = await sendOne(entry);
      assertEquals(sent.abort, reason, entry.path);
      assertEquals([sent.dataFrames, sent.end], [0, null]);
      assertEquals(events, []);
    }
  });
});

Deno.test("file sender: a file that vanished is aborted with why", async () => {
  await withDir(async (dir) => {
    for (const size of [10, MAX_FRAME_PAYLOAD + 10]) {
      const entry = await listed(dir, "gone.bin", content(size));
      await Deno.remove(entry.source!);
      const { sent } = await sendOne(entry);
      assertEquals(sent.abort, "cannot read it: it vanished");
    }
  });
});

Deno.test("file sender: a large file streams in frames of at most 1 MiB", async () => {
  await withDir(async (dir) => {
    const bytes = content(2 * MAX_FRAME_PAYLOAD + 123);
    const { sent, events } = await sendOne(await listed(dir, "big.bin", bytes));
    assertEquals(sent.start, null);
    assertEquals(sent.dataFrames, 3);
    assertEquals(sent.data, bytes);
    assertEquals(sent.end, { length: bytes.length, digest: sha256(bytes) });
    assertEquals(events[0], {
      type: "file-start",
      path: "big.bin",
      size: bytes.length,
      resumed: 0,
    });
    const progress = events.filter((e) => e.type === "progress");
    assertEquals(
      progress.reduce((n, e) => n + (e.type === "progress" ? e.bytes : 0), 0),
      bytes.length,
    );
  });
});

Deno.test("file sender: a resume offer whose prefix is ours sends only the rest", async () => {
  await withDir(async (dir) => {
    const bytes = content(3 * MAX_FRAME_PAYLOAD);
    const offer = MAX_FRAME_PAYLOAD + 17;
    const entry = await listed(dir, "resumed.bin", bytes);
    const { sent, events } = await sendOne(entry, offer, sha256(bytes.subarray(0, offer)));
    assertEquals(sent.start, offer);
    assertEquals(sent.data, bytes.subarray(offer));
    // FILE_END covers the whole file: its length and the digest of all of it.
    assertEquals(sent.end, { length: bytes.length, digest: sha256(bytes) });
    assertEquals(entry.resumed, offer);
    assertEquals(events[0], {
      type: "file-start",
      path: "resumed.bin",
      size: bytes.length,
      resumed: offer,
    });
  });
});

Deno.test("file sender: a resume offer whose prefix is not ours sends it all again", async () => {
  await withDir(async (dir) => {
    const bytes = content(2 * MAX_FRAME_PAYLOAD);
    const entry = await listed(dir, "other.bin", bytes);
    const { sent } = await sendOne(entry, 4096, sha256(content(4096).reverse()));
    assertEquals(sent.start, 0);
    assertEquals(sent.data, bytes);
    assertEquals(sent.end, { length: bytes.length, digest: sha256(bytes) });
    assertEquals(entry.resumed, 0);
  });
});

Deno.test("file sender: a large file that changed since the listing is aborted before its data", async () => {
  await withDir(async (dir) => {
    const entry = await listed(dir, "changed.bin", content(MAX_FRAME_PAYLOAD + 1));
    await Deno.writeFile(entry.source!, content(MAX_FRAME_PAYLOAD + 2));
    const { sent, events } = await sendOne(entry);
    assertEquals(sent.abort, "it changed after it was listed");
    assertEquals(sent.dataFrames, 0);
    assertEquals(events, []);
  });
});

Deno.test("file sender: standard input streams until it ends, its length told at the end", async () => {
  const bytes = content(MAX_FRAME_PAYLOAD + 5000);
  let at = 0;
  const stdin: Readable = {
    read(p) {
      if (at >= bytes.length) return Promise.resolve(null);
      const n = Math.min(p.length, 70_000, bytes.length - at);
      p.set(bytes.subarray(at, at + n));
      at += n;
      return Promise.resolve(n);
    },
  };
  const entry: Numbered = {
    id: 3,
    path: "stdin",
    source: null,
    kind: "file",
    size: null,
    mtime: 0,
    mode: 0o644,
  };
  const { sent, events } = await sendOne(entry, 0, undefined, stdin);
  assertEquals(sent.data, bytes);
  assertEquals(sent.end, { length: bytes.length, digest: sha256(bytes) });
  assertEquals(entry.size, bytes.length);
  assertEquals(events[0], { type: "file-start", path: "stdin", size: null, resumed: 0 });
});
