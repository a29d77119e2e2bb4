/**
 * The sender's reading task alone (src/client/reply_reader.ts), fed frames
 * by hand: who gets each PLAN, ACK and BYE, and what everyone waiting sees
 * when the receiver stops, falls silent or breaks the protocol.
 */
import { assert, assertEquals, assertInstanceOf, assertRejects } from "@std/assert";
import { ReplyReader } from "../src/client/reply_reader.ts";
import { SendErrors } from "../src/client/send_errors.ts";
import { ConnectionLost, FerryError } from "../src/errors.ts";
import { FrameType, type FrameTypeCode } from "../src/protocol/frame.ts";
import { type Ack, encodeJson } from "../src/protocol/messages.ts";
import type { Frame } from "../src/transport/frame_io.ts";

const WHERE = "192.0.2.7:4455";

/** A frame source fed by the test: `push` a frame, or null for a clean close. */
function feed() {
  const queue: (Frame | null)[] = [];
  let wake: (() => void) | null = null;
  return {
    push(type: FrameTypeCode | null, message?: unknown) {
      queue.push(type === null ? null : { type, payload: encodeJson(message ?? {}) });
      wake?.();
    },
    async next(): Promise<Frame | null> {
      while (queue.length === 0) await new Promise<void>((r) => wake = r);
      return queue.shift()!;
    },
  };
}

function setUp() {
  const source = feed();
  const errors = new SendErrors(WHERE, 30_000, 1);
  const acks: Ack[] = [];
  const explained: unknown[] = [];
  let closed = 0;
  const replies = new ReplyReader(source, errors, {
    acknowledged(ack) {
      if (ack.id === 99) throw new Error("an Ack for no file sent");
      acks.push(ack);
    },
    explain(err) {
      explained.push(err);
      return Promise.resolve(errors.explain(err, false));
    },
    close: () => closed++,
  });
  replies.start();
  return { source, replies, acks, explained, closed: () => closed };
}

Deno.test("reply reader: plans go to their batch, acks to the handler, BYE ends the task", async () => {
  const { source, replies, acks, closed } = setUp();
  const plan0 = replies.expect(0);
  const plan1 = replies.expect(1);
  source.push(FrameType.PLAN, { batch: 0, decisions: [{ id: 0, action: "accept" }] });
  const plan = await plan0;
  assertEquals([plan.batch, plan.decisions.map((d) => [d.id, d.action])], [0, [[0, "accept"]]]);
  const acked = replies.nextAck();
  source.push(FrameType.ACK, { acks: [{ id: 0, ok: true, name: "a" }, { id: 1, ok: false }] });
  await acked;
  assertEquals(acks.map((a) => [a.id, a.ok]), [[0, true], [1, false]]);
  source.push(FrameType.PLAN, { batch: 1, decisions: [] });
  assertEquals((await plan1).batch, 1);
  source.push(FrameType.BYE, { files: 1, bytes: 5, failed: 1 });
  assertEquals(await replies.bye(), { files: 1, bytes: 5, failed: 1 });
  await replies.reading;
  assertEquals(replies.failure, null);
  assertEquals(closed(), 0);
});

Deno.test("reply reader: an ERROR fails every waiter in the receiver's words, and closes", async () => {
  const { source, replies, explained, closed } = setUp();
  const plan = replies.expect(0);
  const ack = replies.nextAck();
  const bye = replies.bye();
  source.push(FrameType.ERROR, { code: "disk-full", message: "no space\x1b[2J left" });
  await replies.reading;
  const failure = replies.failure as FerryError;
  assertInstanceOf(failure, FerryError);
  assert(!(failure instanceof ConnectionLost));
  assertEquals(failure.code, "refused");
  assertEquals(
    failure.message,
    `${WHERE} stopped the transfer: no space\\u{1b}[2J left (disk-full)`,
  );
  for (const waiting of [plan, ack, bye]) assertEquals(await waiting.catch((e) => e), failure);
  // Already in words: not explained again.
  assertEquals(explained, []);
  assertEquals(closed(), 1);
  // A batch announced after the failure fails at once.
  assertEquals(await replies.expect(1).catch((e) => e), failure);
});

Deno.test("reply reader: a receiver shutting down is a lost connection (worth a retry)", async () => {
  const { source, replies } = setUp();
  source.push(FrameType.ERROR, { code: "shutting-down", message: "bye" });
  await replies.reading;
  const failure = replies.failure as ConnectionLost;
  assertInstanceOf(failure, ConnectionLost);
  assertEquals(failure.code, "refused");
  assertEquals(failure.message, `${WHERE} is shutting down`);
});

Deno.test("reply reader: a clean close before BYE is a lost connection", async () => {
  const { source, replies } = setUp();
  source.push(null);
  await assertRejects(() => replies.bye(), ConnectionLost);
  assertEquals(
    replies.failure?.message,
    `${WHERE} closed the connection before the transfer ended`,
  );
});

Deno.test("reply reader: protocol faults are explained once, as protocol errors", async () => {
  const cases: [FrameTypeCode, unknown, string][] = [
    [FrameType.PLAN, { batch: 3, decisions: [] }, "unexpected plan 3"],
    [FrameType.WELCOME, {}, "frame 0x2 is not expected from a receiver"],
    [FrameType.ACK, { acks: [{ id: 99, ok: true }] }, "an Ack for no file sent"],
  ];
  for (const [type, message, words] of cases) {
    const { source, replies, explained, closed } = setUp();
    source.push(type, message);
    await replies.reading;
    assertEquals(explained.length, 1);
    assertEquals(closed(), 1);
    if (type === FrameType.ACK) {
      // Not a ProtocolError: a bug is passed on as it is.
      assertEquals(replies.failure?.message, words);
    } else {
      const failure = replies.failure as FerryError;
      assertInstanceOf(failure, FerryError);
      assertEquals(failure.code, "protocol");
      assertEquals(failure.message, `protocol error with ${WHERE}: ${words}`);
    }
  }
});
