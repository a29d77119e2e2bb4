import { assert, assertEquals, assertThrows } from "@std/assert";
import { concat } from "@std/bytes";
import {
  decodeFileAbort,
  decodeFileEnd,
  encodeFileAbort,
  encodeFileEnd,
  encodeFrame,
  FrameType,
  parseHeader,
} from "../src/protocol/frame.ts";
import { ProtocolError } from "../src/protocol/errors.ts";
import { decodePreamble, encodePreamble } from "../src/protocol/preamble.ts";
import { MAX_FRAME_PAYLOAD } from "../src/protocol/limits.ts";
import { FrameReader, FrameWriter } from "../src/transport/frame_io.ts";
import { memoryStream } from "./_memory_stream.ts";

function header(type: number, length: number): Uint8Array {
  const out = new Uint8Array(5);
  out[0] = type;
  new DataView(out.buffer).setUint32(1, length);
  return out;
}

function protocolCode(fn: () => unknown): string {
  const err = assertThrows(fn, ProtocolError) as ProtocolError;
  return err.code;
}

Deno.test("encodeFrame() writes type, big-endian length, then payload", () => {
  const frame = encodeFrame(FrameType.ANNOUNCE, new Uint8Array([7, 8, 9]));
  assertEquals([...frame], [0x10, 0, 0, 0, 3, 7, 8, 9]);
});

Deno.test("parseHeader() reads what encodeFrame() wrote", () => {
  const frame = encodeFrame(FrameType.DATA, new Uint8Array(70_000));
  assertEquals(parseHeader(frame), { type: FrameType.DATA, length: 70_000 });
});

Deno.test("parseHeader() rejects an oversized length before any payload", () => {
  assertEquals(
    protocolCode(() => parseHeader(header(FrameType.DATA, MAX_FRAME_PAYLOAD + 1))),
    "frame-too-large",
  );
  assertEquals(
    protocolCode(() => parseHeader(header(FrameType.DATA, 0xffff_ffff))),
    "frame-too-large",
  );
  assertEquals(protocolCode(() => parseHeader(header(FrameType.FILE_END, 78))), "frame-too-large");
  assertEquals(protocolCode(() => parseHeader(header(FrameType.DONE, 1))), "frame-too-large");
  assertEquals(parseHeader(header(FrameType.DATA, MAX_FRAME_PAYLOAD)).length, MAX_FRAME_PAYLOAD);
});

Deno.test("parseHeader() rejects unknown frame types and short headers", () => {
  assertEquals(protocolCode(() => parseHeader(header(0x00, 0))), "bad-frame");
  assertEquals(protocolCode(() => parseHeader(header(0x99, 0))), "bad-frame");
  assertEquals(protocolCode(() => parseHeader(new Uint8Array(4))), "bad-frame");
});

Deno.test("FILE_END round-trips lengths up to 2^53-1", () => {
  const digest = new Uint8Array(32).fill(0xab);
  for (const length of [0, 1, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 5, Number.MAX_SAFE_INTEGER]) {
    const end = decodeFileEnd(encodeFileEnd({ id: 0xffff_fffe, length, digest }));
    assertEquals(end.id, 0xffff_fffe);
    assertEquals(end.length, length);
    assertEquals(end.digest, digest);
  }
});

Deno.test("decodeFileEnd() rejects lengths beyond 2^53 and mismatched digest lengths", () => {
  const bytes = encodeFileEnd({ id: 1, length: 5, digest: new Uint8Array(32) });
  const huge = bytes.slice();
  huge[4] = 0x00;
  huge[5] = 0x20; // high word 2^21 → length 2^53
  assertEquals(protocolCode(() => decodeFileEnd(huge)), "bad-frame");
  assertEquals(protocolCode(() => decodeFileEnd(bytes.subarray(0, 40))), "bad-frame");
  assertEquals(protocolCode(() => decodeFileEnd(bytes.subarray(0, 10))), "bad-frame");
  const long = bytes.slice();
  long[12] = 65;
  assertEquals(protocolCode(() => decodeFileEnd(long)), "bad-frame");
});

Deno.test("FILE_ABORT round-trips and caps its reason", () => {
  assertEquals(decodeFileAbort(encodeFileAbort({ id: 9, reason: "gone" })), {
    id: 9,
    reason: "gone",
  });
  const long = encodeFileAbort({ id: 1, reason: "é".repeat(5000) });
  assert(long.length <= 4 + 1024, `abort frame of ${long.length} bytes`);
  assertEquals(protocolCode(() => decodeFileAbort(new Uint8Array(3))), "bad-frame");
});

Deno.test("decodePreamble() checks the magic and reads version and channel", () => {
  assertEquals(decodePreamble(encodePreamble({ version: 7, channel: 3 })), {
    version: 7,
    channel: 3,
  });
  assertEquals(
    protocolCode(() => decodePreamble(new TextEncoder().encode("GET / HT"))),
    "not-ferry",
  );
  assertEquals(protocolCode(() => decodePreamble(new Uint8Array(7))), "not-ferry");
});

Deno.test("FrameReader reassembles frames split into 1-byte reads", async () => {
  const big = new Uint8Array(MAX_FRAME_PAYLOAD).map((_, i) => i % 251);
  const input = concat([
    encodeFrame(FrameType.HELLO, new TextEncoder().encode("{}")),
    encodeFrame(FrameType.DATA, big),
    encodeFrame(FrameType.DONE, new Uint8Array(0)),
  ]);
  for (const step of [1, 7, 65536, input.length]) {
    const reader = new FrameReader(memoryStream(input, step));
    const a = await reader.next();
    assertEquals(a?.type, FrameType.HELLO);
    const b = await reader.next();
    assertEquals(b?.type, FrameType.DATA);
    assertEquals(b?.payload, big);
    assertEquals((await reader.next())?.type, FrameType.DONE);
    assertEquals(await reader.next(), null);
  }
});

Deno.test("FrameReader.nextBuffered() takes only frames buffered whole, without reading", async () => {
  const hello = new TextEncoder().encode("{}");
  const data = new Uint8Array(10).fill(7);
  const input = concat([
    encodeFrame(FrameType.HELLO, hello),
    encodeFrame(FrameType.DATA, data),
    encodeFrame(FrameType.DONE, new Uint8Array(0)),
  ]);
  // The first read brings the first frame and half of the second.
  const reader = new FrameReader(memoryStream(input, 5 + hello.length + 8));
  assertEquals(reader.nextBuffered(), null); // nothing read yet
  assertEquals((await reader.next())?.type, FrameType.HELLO);
  assertEquals(reader.nextBuffered(), null); // the DATA frame is not all here
  assertEquals(reader.buffered, 8);
  const b = await reader.next();
  assertEquals([b?.type, b?.payload], [FrameType.DATA, data]);
  // The rest came with that read: DONE is taken at once.
  assertEquals(reader.nextBuffered()?.type, FrameType.DONE);
  assertEquals(reader.nextBuffered(), null);
  assertEquals(await reader.next(), null);

  // A bad header buffered behind a frame is refused there too, as next() would.
  const bad = concat([encodeFrame(FrameType.HELLO, hello), header(0x99, 0)]);
  const badReader = new FrameReader(memoryStream(bad, bad.length));
  assertEquals((await badReader.next())?.type, FrameType.HELLO);
  assertEquals(protocolCode(() => badReader.nextBuffered()), "bad-frame");
});

/** `count` DATA frames of `size` bytes, frame i filled with the byte i + 1. */
function dataFrames(count: number, size: number): { input: Uint8Array; payloads: Uint8Array[] } {
  const payloads = Array.from({ length: count }, (_, i) => new Uint8Array(size).fill(i + 1));
  return { input: concat(payloads.map((p) => encodeFrame(FrameType.DATA, p))), payloads };
}

Deno.test("FrameReader.hold() keeps a payload intact while the next frames are read", async () => {
  // Frames larger than half the buffer: without the hold, reading the next ones reuses its bytes.
  const { input, payloads } = dataFrames(6, MAX_FRAME_PAYLOAD);
  for (const step of [7_000, 300_000, input.length]) {
    const reader = new FrameReader(memoryStream(input, step));
    let held: { payload: Uint8Array; release: () => void } | null = null;
    for (const [i, expected] of payloads.entries()) {
      const frame = await reader.next();
      assertEquals(frame?.payload.length, expected.length);
      assert(frame!.payload.every((b) => b === i + 1), `frame ${i}, step ${step}`);
      if (held !== null) {
        assert(held.payload.every((b) => b === i), `held frame ${i - 1} intact, step ${step}`);
        held.release();
      }
      held = { payload: frame!.payload, release: reader.hold() };
    }
    held!.release();
    assertEquals(await reader.next(), null);
  }
});

Deno.test("FrameReader.next() waits while both buffers are held, until one is released", async () => {
  const { input } = dataFrames(4, MAX_FRAME_PAYLOAD);
  const reader = new FrameReader(memoryStream(input, MAX_FRAME_PAYLOAD + 5)); // a frame a read
  await reader.next();
  const first = reader.hold();
  await reader.next();
  const second = reader.hold();
  let third = false;
  const next = reader.next().then((frame) => {
    third = true;
    return frame;
  });
  await new Promise((resolve) => setTimeout(resolve, 20));
  assertEquals(third, false, "read into a held buffer");
  first();
  first(); // a second call is harmless
  const frame = await next;
  assert(frame!.payload.every((b) => b === 3));
  second();
});

Deno.test("FrameReader.takeBuffered() refuses while a payload is held", async () => {
  // Handing the buffered bytes over resets the buffer: a held payload would then be overwritten.
  const { input, payloads } = dataFrames(2, 1000);
  const reader = new FrameReader(memoryStream(input, input.length));
  const frame = await reader.next();
  const release = reader.hold();
  assertThrows(() => reader.takeBuffered(), Error, "held");
  assertEquals(frame!.payload, payloads[0]);
  release();
  assertEquals(reader.takeBuffered(), encodeFrame(FrameType.DATA, payloads[1]!));
});

Deno.test("FrameReader reports a stream that ends inside a frame as truncated", async () => {
  const frame = encodeFrame(FrameType.DATA, new Uint8Array(100));
  for (const cut of [1, 4, 5, 50]) {
    const reader = new FrameReader(memoryStream(frame.subarray(0, cut), 1000));
    const err = await reader.next().then(() => null, (e) => e);
    assert(err instanceof ProtocolError, `cut at ${cut}`);
    assertEquals(err.code, "truncated");
  }
});

Deno.test("FrameWriter packs small frames into one write and reserve()/commit() frames data in place", async () => {
  const stream = memoryStream(new Uint8Array(0), 1);
  const writer = new FrameWriter(stream);
  await writer.frame(FrameType.HELLO, new Uint8Array([1]));
  const room = await writer.reserve(10);
  room.set([5, 6, 7]);
  writer.commit(FrameType.DATA, 3);
  await writer.frame(FrameType.DONE, new Uint8Array(0));
  await writer.flush();
  assertEquals(stream.written.length, 1);
  assertEquals([...stream.written[0]!], [
    0x01,
    0,
    0,
    0,
    1,
    1,
    0x20,
    0,
    0,
    0,
    3,
    5,
    6,
    7,
    0x40,
    0,
    0,
    0,
    0,
  ]);
});

Deno.test("FrameWriter's reserveExactlyNow() and frameNow() queue in place, and refuse where they would wait", async () => {
  const stream = memoryStream(new Uint8Array(0), 1);
  const writer = new FrameWriter(stream);
  const room = writer.reserveExactlyNow(2)!;
  room.set([8, 9]);
  writer.commit(FrameType.DATA, 2);
  assert(writer.frameNow(FrameType.DONE, new Uint8Array(0)));
  assertEquals(stream.written.length, 0, "nothing written yet");
  // Fill the buffer up to where a full frame no longer fits: both refuse, and queue nothing.
  const big = await writer.reserve(MAX_FRAME_PAYLOAD);
  writer.commit(FrameType.DATA, big.length);
  const pending = writer.pending;
  assertEquals(writer.reserveExactlyNow(MAX_FRAME_PAYLOAD), null);
  assertEquals(writer.frameNow(FrameType.DATA, new Uint8Array(MAX_FRAME_PAYLOAD)), false);
  assertEquals(writer.pending, pending);
  await writer.flush();
  assertEquals([...stream.written[0]!.subarray(0, 12)], [0x20, 0, 0, 0, 2, 8, 9, 0x40, 0, 0, 0, 0]);
  assertEquals(stream.written.reduce((n, w) => n + w.length, 0), pending);
});
