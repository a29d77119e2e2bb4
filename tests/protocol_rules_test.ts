/**
 * Rules of docs/PROTOCOL.md that an independent peer's author found unclear,
 * each as ferry now settles it, run against a real receiver (or, for the
 * sender's rules, a fake one): the order of the sender's channel check, a
 * share that cannot decode, DATA sent before its PLAN, a close record before
 * DONE, BYE's `failed` after a resend, and how a fractional mtime is applied.
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import { join } from "node:path";
import { encodeFileEnd, encodeFrame, FrameType } from "../src/protocol/frame.ts";
import { Channel, encodePreamble, PROTOCOL_VERSION } from "../src/protocol/preamble.ts";
import type { Ack, Decision } from "../src/protocol/messages.ts";
import { senderAd } from "../src/transport/channel.ts";
import { SMALL_FILE_MAX } from "../src/server/small_file.ts";
import { defined } from "./_expect.ts";
import { fakeReceiver } from "./_fake_receiver.ts";
import {
  listTree,
  randomBytes,
  RawClient,
  sendInProcess,
  sha256,
  startServer,
  tempDir,
  type TestServer,
  waitFor,
} from "./_harness.ts";

type Json = Record<string, unknown>;
const MTIME = 1_700_000_000_000;
const TRANSFER = "0123456789abcdef0123456789abcdef";

async function withServer(test: (srv: TestServer, dir: string) => Promise<void>): Promise<void> {
  await using baseDir = await tempDir("ferry-rules-");
  const base = baseDir.path;
  const dir = join(base, "inbox");
  const srv = await startServer(dir);
  try {
    await test(srv, dir);
  } finally {
    await srv.close();
  }
}

function file(id: number, path: string, size: number | null, fields: Json = {}): Json {
  return { id, path, kind: "file", size, mtime: MTIME, mode: 0o644, ...fields };
}

async function expectFrame(client: RawClient, type: number): Promise<Json> {
  const frame = await client.next();
  if (frame === null) throw new Error(`expected frame 0x${type.toString(16)}; the receiver closed`);
  assertEquals(frame.type, type, `got 0x${frame.type.toString(16)}: ${JSON.stringify(frame.json)}`);
  return frame.json as Json;
}

async function announce(client: RawClient, batch: number, entries: Json[]): Promise<Decision[]> {
  await client.json(FrameType.ANNOUNCE, { batch, entries });
  const plan = await expectFrame(client, FrameType.PLAN);
  return plan.decisions as Decision[];
}

async function sendFile(client: RawClient, id: number, data: Uint8Array, digest = sha256(data)) {
  for (let at = 0; at < data.length; at += 1 << 20) {
    await client.send(FrameType.DATA, data.subarray(at, at + (1 << 20)));
  }
  await client.send(FrameType.FILE_END, encodeFileEnd({ id, length: data.length, digest }));
}

async function readAck(client: RawClient): Promise<Ack> {
  const acks = (await expectFrame(client, FrameType.ACK)).acks as Ack[];
  assertEquals(acks.length, 1);
  return acks[0]!;
}

/** Reads until the receiver closes; its last frame must be ERROR `code`. */
async function expectError(client: RawClient, code: string): Promise<void> {
  const frames = await client.drain();
  const last = frames.at(-1);
  assertEquals(last?.type, FrameType.ERROR, JSON.stringify(frames));
  assertEquals((last?.json as Json).code, code, JSON.stringify(last?.json));
}

async function sessionEnd(srv: TestServer): Promise<Json> {
  await waitFor("the session's end", () => srv.events.some((e) => e.type === "session-end"));
  return srv.events.find((e) => e.type === "session-end") as unknown as Json;
}

// ---------------------------------------------------------------------------
// §2: the sender judges the receiver's channel byte before the key exchange

Deno.test("a sender refuses a receiver preamble of another channel before sending its key share", async () => {
  await using baseDir = await tempDir("ferry-rules-");
  const base = baseDir.path;
  const path = join(base, "a.txt");
  await Deno.writeTextFile(path, "hello");
  // Channel 0 in the preamble, then a CHANNEL_OPEN (not an ERROR): a receiver that got the
  // channel wrong, or a path that changed the byte.
  const open = new Uint8Array(17);
  crypto.getRandomValues(open.subarray(1));
  const fake = fakeReceiver(
    Uint8Array.from([
      ...encodePreamble({ version: PROTOCOL_VERSION, channel: Channel.plain }),
      ...encodeFrame(FrameType.CHANNEL_OPEN, open),
    ]),
  );
  try {
    await assertRejects(() => sendInProcess(fake.port, [path]), Error, "channel 0");
    const frames = await fake.frames;
    assertEquals(frames.map((f) => f.type), [FrameType.ERROR], "no KEY_SHARE, nothing else");
    const error = JSON.parse(new TextDecoder().decode(frames[0]!.payload));
    assertEquals(error.code, "unsupported-channel");
  } finally {
    fake.close();
  }
});

// ---------------------------------------------------------------------------
// §4.1, §4.3: a share that is not a canonical encoding of a group element

/** RFC 9496 Appendix A: B, and one invalid encoding of each class of §4.3.1. */
const B = "e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76";
const BAD_SHARES: [string, string][] = [
  ["B with bit 255 set", B.slice(0, 62) + "f6"],
  ["s >= p", "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"],
  ["negative s", "0100000000000000000000000000000000000000000000000000000000000000"],
  ["not square", "26948d35ca62e643e26a83177332e6b6afeb9d08e4268b650f1f5bbd8d81d371"],
  ["negative xy", "3eb858e78f5a7254d8c9731174a94f76755fd3941c0ac93735c07ba14579630e"],
  ["y = 0", "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"],
  ["the identity", "00".repeat(32)],
];

function fromHex(hex: string): Uint8Array {
  return Uint8Array.from(hex.match(/../g)!, (b) => parseInt(b, 16));
}

Deno.test("a receiver answers a share that does not decode with bad-key-share, and counts no guess", async () => {
  await withServer(async (srv) => {
    for (const [what, share] of BAD_SHARES) {
      const client = await RawClient.connect(srv.port);
      try {
        await client.writer.raw(encodePreamble({ version: PROTOCOL_VERSION, channel: 1 }));
        await client.send(FrameType.CHANNEL_OPEN, new Uint8Array(16));
        assert((await client.reader.readRaw(8)) !== null);
        await expectFrame(client, FrameType.CHANNEL_OPEN);
        await client.send(
          FrameType.KEY_SHARE,
          Uint8Array.from([...fromHex(share), ...senderAd(["chacha20-poly1305"])]),
        );
        await expectError(client, "bad-key-share");
      } finally {
        client.close();
      }
      await waitFor(
        "the session's end",
        () => srv.events.filter((e) => e.type === "session-end").length > 0,
      );
      assertEquals(srv.events.filter((e) => e.type === "wrong-code"), [], what);
      srv.events.length = 0;
    }
  });
});

// ---------------------------------------------------------------------------
// §6.1: DATA before its batch's PLAN

Deno.test("DATA sent without waiting for the PLAN is taken for the first accepted file", async () => {
  await withServer(async (srv, dir) => {
    const client = await RawClient.open(srv.port);
    try {
      // The receiver decides a batch as it reads it: DATA read after it cannot be told from
      // DATA sent after the PLAN arrived.
      const data = new TextEncoder().encode("early");
      await client.json(FrameType.ANNOUNCE, { batch: 0, entries: [file(0, "a.txt", 5)] });
      await sendFile(client, 0, data);
      const plan = await expectFrame(client, FrameType.PLAN);
      assertEquals(defined((plan.decisions as Decision[])[0], "a decision").action, "accept");
      assertEquals((await readAck(client)).ok, true);
      await client.send(FrameType.DONE, new Uint8Array(0));
      assertEquals((await expectFrame(client, FrameType.BYE)).files, 1);
      assertEquals(await Deno.readFile(join(dir, "a.txt")), data);
    } finally {
      client.close();
    }
  });
});

Deno.test("DATA of an entry the PLAN did not accept is bad-sequence", async () => {
  await withServer(async (srv) => {
    // No entry pending at all: DATA before any ANNOUNCE, or after a batch all refused.
    for (const entries of [[], [file(0, "../escape.txt", 5)]]) {
      const client = await RawClient.open(srv.port);
      try {
        if (entries.length > 0) await client.json(FrameType.ANNOUNCE, { batch: 0, entries });
        await client.send(FrameType.DATA, new TextEncoder().encode("early"));
        await expectError(client, "bad-sequence");
      } finally {
        client.close();
      }
    }
    // A refused entry ahead of an accepted one: the data counts for the accepted file, and the
    // refused entry's FILE_END names the wrong file.
    const client = await RawClient.open(srv.port);
    try {
      await client.json(FrameType.ANNOUNCE, {
        batch: 0,
        entries: [file(0, "../escape.txt", 5), file(1, "b.txt", 5)],
      });
      await sendFile(client, 0, new TextEncoder().encode("early"));
      await expectError(client, "bad-sequence");
    } finally {
      client.close();
    }
  });
});

// ---------------------------------------------------------------------------
// §4.5, §6.4: a close record before DONE

Deno.test("a close record before DONE ends the session as a sender that left: no answer, partial kept", async () => {
  await withServer(async (srv, dir) => {
    const client = await RawClient.connect(srv.port);
    try {
      await client.handshake(PROTOCOL_VERSION, { features: ["resume"], transfer: TRANSFER });
      const size = 3 << 20;
      const decision = (await announce(client, 0, [file(0, "big.bin", size)]))[0]!;
      assertEquals(decision.action, "accept");
      await client.send(FrameType.DATA, randomBytes(1 << 20));
      await client.stream.closeWrite?.(); // the close record (then a half-close)
      const frames = await client.drain();
      assertEquals(frames, [], "no ERROR, no BYE");
    } finally {
      client.close();
    }
    const end = await sessionEnd(srv);
    assertEquals(end.cause, "disconnected");
    const staging = await listTree(join(dir, ".ferry"), { includeStaging: true });
    assert(staging.some((p) => p.startsWith("partial/")), `kept as a partial: ${staging}`);
    assert(staging.includes(`transfers/${TRANSFER}`), "the transfer can resume");
  });
});

// ---------------------------------------------------------------------------
// §5.12, §7: BYE's failed and the transfer marker after a resend

async function damagedThenResent(srv: TestServer, resend: boolean): Promise<Json> {
  const client = await RawClient.connect(srv.port);
  try {
    await client.handshake(PROTOCOL_VERSION, { features: ["resume"], transfer: TRANSFER });
    const data = new TextEncoder().encode("hello");
    await announce(client, 0, [file(0, "a.txt", 5)]);
    await sendFile(client, 0, data, new Uint8Array(32)); // a digest that does not match
    const damaged = await readAck(client);
    assertEquals([damaged.ok, damaged.retry], [false, true]);
    if (resend) {
      await announce(client, 1, [file(1, "a.txt", 5)]);
      await sendFile(client, 1, data);
      assertEquals((await readAck(client)).ok, true);
    }
    await client.send(FrameType.DONE, new Uint8Array(0));
    return await expectFrame(client, FrameType.BYE);
  } finally {
    client.close();
  }
}

Deno.test("a file that arrived damaged and then whole on its resend is not counted as failed", async () => {
  await withServer(async (srv, dir) => {
    const bye = await damagedThenResent(srv, true);
    assertEquals([bye.files, bye.failed], [1, 0]);
    assertEquals((await sessionEnd(srv)).failed, 0);
    // The transfer completed: its marker is gone, so the same command later is a new copy.
    assertEquals(await listTree(join(dir, ".ferry", "transfers")), []);
  });
});

Deno.test("a damaged file that is not sent again stays failed, and its transfer can resume", async () => {
  await withServer(async (srv, dir) => {
    const bye = await damagedThenResent(srv, false);
    assertEquals([bye.files, bye.failed], [0, 1]);
    await sessionEnd(srv);
    assertEquals(await listTree(join(dir, ".ferry", "transfers")), [TRANSFER]);
  });
});

// ---------------------------------------------------------------------------
// §5.4, §9.4: mtime is applied to the millisecond, a fraction cut toward zero

async function mtimeNanos(path: string): Promise<string> {
  const out = await new Deno.Command("stat", { args: ["-c", "%.9Y", path] }).output();
  return new TextDecoder().decode(out.stdout).trim();
}

Deno.test({
  name: "a fractional mtime is applied as its whole milliseconds, small file or large",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    await withServer(async (srv, dir) => {
      const client = await RawClient.open(srv.port);
      try {
        const small = new TextEncoder().encode("small");
        const large = randomBytes(SMALL_FILE_MAX + 1);
        const mtime = 1_700_000_000_123.987;
        const decisions = await announce(client, 0, [
          file(0, "small.txt", small.length, { mtime }),
          file(1, "large.bin", large.length, { mtime }),
        ]);
        assertEquals(decisions.map((d) => d.action), ["accept", "accept"]);
        await sendFile(client, 0, small);
        await sendFile(client, 1, large);
        await client.send(FrameType.DONE, new Uint8Array(0));
        const frames = await client.drain();
        assertEquals((frames.at(-1)?.json as Json).files, 2, JSON.stringify(frames));
      } finally {
        client.close();
      }
      assertEquals(await mtimeNanos(join(dir, "small.txt")), "1700000000.123000000");
      assertEquals(await mtimeNanos(join(dir, "large.bin")), "1700000000.123000000");
    });
  },
});
