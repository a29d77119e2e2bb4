/**
 * The sender's handshake alone (src/client/handshake.ts) on the plain
 * channel, against a scripted receiver in memory: what HELLO offers, what
 * WELCOME settles, and how a receiver that answers otherwise is reported.
 * (The secure channel's handshake runs in secure_channel_test.ts and
 * suite_negotiation_test.ts, against a real receiver.)
 */
import { assertEquals, assertInstanceOf, assertRejects } from "@std/assert";
import { handshake, type HandshakeOptions, offeredDigests } from "../src/client/handshake.ts";
import { SendErrors } from "../src/client/send_errors.ts";
import { ConnectionLost, FerryError } from "../src/errors.ts";
import { ProtocolError } from "../src/protocol/errors.ts";
import { encodeFrame, FrameType } from "../src/protocol/frame.ts";
import { encodeJson } from "../src/protocol/messages.ts";
import { Channel, encodePreamble, PREAMBLE_BYTES } from "../src/protocol/preamble.ts";
import type { ByteStream } from "../src/transport/byte_stream.ts";
import { FrameReader } from "../src/transport/frame_io.ts";
import { FramedLink } from "../src/transport/framed_link.ts";

const WHERE = "192.0.2.1:4455";
const errors = new SendErrors(WHERE, 60_000, 1);
const options: HandshakeOptions = {
  software: "ferry/test",
  transfer: "0123456789abcdef0123456789abcdef",
  code: null,
  plaintext: true,
};

/** A connection whose receiver answers with `reply`; keeps what the sender writes. */
function connection(reply: Uint8Array): ByteStream & { written(): Uint8Array } {
  let at = 0;
  const out: number[] = [];
  return {
    read(p) {
      if (at >= reply.length) return Promise.resolve(null);
      const n = Math.min(p.length, reply.length - at);
      p.set(reply.subarray(at, at + n));
      at += n;
      return Promise.resolve(n);
    },
    write(p) {
      out.push(...p);
      return Promise.resolve(p.length);
    },
    close() {},
    written: () => Uint8Array.from(out),
  };
}

function welcome(fields: Record<string, unknown> = {}): Uint8Array {
  return encodeFrame(
    FrameType.WELCOME,
    encodeJson({
      software: "ferry/receiver",
      digest: "sha256",
      features: ["resume"],
      limits: { maxBatchEntries: 100, maxFrame: 65536, maxPathBytes: 4096 },
      ...fields,
    }),
  );
}

function reply(...parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(parts.flatMap((p) => [...p]));
}

const plainPreamble = encodePreamble({ version: 1, channel: Channel.plain });

/** What the sender wrote: its preamble, then its frames. */
async function sent(conn: { written(): Uint8Array }) {
  const bytes = conn.written();
  const reader = new FrameReader(connection(bytes));
  const preamble = await reader.readRaw(PREAMBLE_BYTES);
  const frames = [];
  for (let f = await reader.next(); f !== null; f = await reader.next()) {
    frames.push({ type: f.type, json: JSON.parse(new TextDecoder().decode(f.payload)) });
  }
  return { preamble, frames };
}

Deno.test("handshake: HELLO offers sha256 always, and WELCOME settles the session", async () => {
  assertEquals(offeredDigests(), ["xxh128", "sha256"]);
  assertEquals(offeredDigests(["xxh128"]), ["xxh128", "sha256"]);
  assertEquals(offeredDigests(["sha256"]), ["sha256"]);
  const conn = connection(reply(plainPreamble, welcome()));
  const agreed = await handshake(
    new FramedLink(conn),
    { ...options, digests: ["xxh128"] },
    errors,
  );
  assertEquals(agreed.digest.name, "sha256");
  assertEquals(agreed.cipher, null);
  assertEquals(agreed.resume, true);
  assertEquals(agreed.welcome.limits.maxBatchEntries, 100);
  const { preamble, frames } = await sent(conn);
  assertEquals(preamble, plainPreamble);
  assertEquals(frames, [{
    type: FrameType.HELLO,
    json: {
      software: "ferry/test",
      digests: ["xxh128", "sha256"],
      features: ["resume", "sync", "text", "listing"],
      transfer: options.transfer,
    },
  }]);
});

Deno.test("handshake: a receiver without resume, choosing xxh128", async () => {
  const conn = connection(reply(plainPreamble, welcome({ digest: "xxh128", features: [] })));
  const agreed = await handshake(new FramedLink(conn), options, errors);
  assertEquals(agreed.digest.name, "xxh128");
  assertEquals(agreed.resume, false);
});

Deno.test("handshake: a WELCOME that is not one of ours is a protocol error", async () => {
  const cases: [Uint8Array, string, string][] = [
    [
      reply(plainPreamble, welcome({ digest: "xxh128" })),
      "bad-message",
      "the receiver chose digest xxh128, not offered",
    ],
    [
      reply(encodePreamble({ version: 1, channel: Channel.cpace }), welcome()),
      "unsupported-channel",
      "the receiver chose channel 1",
    ],
    [
      reply(plainPreamble, encodeFrame(FrameType.PLAN, encodeJson({}))),
      "unexpected-frame",
      "expected WELCOME",
    ],
  ];
  for (const [answer, code, message] of cases) {
    const err = await assertRejects(
      () =>
        handshake(new FramedLink(connection(answer)), { ...options, digests: ["sha256"] }, errors),
      ProtocolError,
    );
    assertEquals([err.code, err.message], [code, message]);
  }
});

Deno.test("handshake: the receiver's refusals and silences in the sender's words", async () => {
  const busy = await assertRejects(() =>
    handshake(
      new FramedLink(connection(reply(
        plainPreamble,
        encodeFrame(FrameType.ERROR, encodeJson({ code: "busy", message: "later" })),
      ))),
      options,
      errors,
    )
  );
  assertInstanceOf(busy, ConnectionLost);
  assertEquals(busy.message, `${WHERE} refused the session: later (busy)`);
  const closed = await assertRejects(() =>
    handshake(new FramedLink(connection(new Uint8Array(0))), options, errors)
  );
  assertInstanceOf(closed, ConnectionLost);
  assertEquals(closed.message, `${WHERE} closed the connection during the handshake`);
  const other = await assertRejects(() =>
    handshake(
      new FramedLink(connection(encodePreamble({ version: 2, channel: Channel.plain }))),
      options,
      errors,
    )
  );
  assertInstanceOf(other, FerryError);
  assertEquals((other as FerryError).code, "protocol");
  const http = await assertRejects(() =>
    handshake(
      new FramedLink(connection(new TextEncoder().encode("HTTP/1.1 400 Bad\r\n\r\n"))),
      options,
      errors,
    )
  );
  assertEquals((http as Error).message, `${WHERE} is not a ferry server`);
});
