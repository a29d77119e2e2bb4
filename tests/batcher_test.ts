/**
 * The sender's batcher alone (src/client/batcher.ts), with a fake writer and
 * fake plans: where batches are cut, how many are open, what they carry.
 */
import { assert, assertEquals } from "@std/assert";
import {
  BATCH_ENTRIES,
  Batcher,
  OPEN_BATCHES,
  type Take,
  utf8Length,
} from "../src/client/batcher.ts";
import { type Numbered, Outcomes, type SendEvent } from "../src/client/send_types.ts";
import { FrameType, type FrameTypeCode } from "../src/protocol/frame.ts";
import type { Plan, Totals } from "../src/protocol/messages.ts";

interface Announced {
  batch: number;
  entries: { id: number; path: string }[];
  totals?: Totals;
}

/** A writer that keeps ANNOUNCE payloads, and counts flushes. */
function fakeWriter() {
  const announced: Announced[] = [];
  const writer = {
    announced,
    flushes: 0,
    frame(type: FrameTypeCode, payload: Uint8Array) {
      assertEquals(type, FrameType.ANNOUNCE);
      announced.push(JSON.parse(new TextDecoder().decode(payload)));
      return Promise.resolve();
    },
    flush() {
      writer.flushes++;
      return Promise.resolve();
    },
  };
  return writer;
}

/** Plans that are never answered; records which batches were expected. */
function fakePlans() {
  const expected: number[] = [];
  return {
    expected,
    expect: (batch: number) => (expected.push(batch), new Promise<Plan>(() => {})),
  };
}

function entry(id: number, path = `f${id}.txt`): Numbered {
  return { id, path, source: `/src/${path}`, kind: "file", size: 1, mtime: 0, mode: 0o644 };
}

/** Takes `entries` in order, then null. */
function takeFrom(entries: Numbered[]): Take {
  const left = [...entries];
  return () => Promise.resolve(left.shift() ?? null);
}

function setUp(
  limits = { maxBatchEntries: 4096, maxFrame: 1 << 20 },
  totals?: () => Totals | null,
) {
  const writer = fakeWriter();
  const plans = fakePlans();
  const events: SendEvent[] = [];
  const outcomes = new Outcomes((e) => events.push(e));
  const batcher = new Batcher(writer, plans, limits, outcomes, totals);
  return { writer, plans, events, outcomes, batcher };
}

Deno.test("batcher: two batches open at most, cut at the receiver's maxBatchEntries", async () => {
  const { writer, plans, batcher } = setUp({ maxBatchEntries: 3, maxFrame: 1 << 20 });
  const take = takeFrom(Array.from({ length: 10 }, (_, i) => entry(i)));
  assertEquals(OPEN_BATCHES, 2);
  assertEquals(await batcher.fill(take), true);
  assertEquals(writer.announced.map((a) => a.entries.map((e) => e.id)), [[0, 1, 2], [3, 4, 5]]);
  assertEquals(writer.announced.map((a) => a.batch), [0, 1]);
  assertEquals(plans.expected, [0, 1]);
  assertEquals(writer.flushes, 2); // each as soon as it is cut
  assert(batcher.full);
  assertEquals(batcher.oldest?.batch, 0);
  // Full: nothing more is taken until a batch has been sent.
  assertEquals(await batcher.fill(take), true);
  assertEquals(writer.announced.length, 2);
  assertEquals(writer.flushes, 2);
  batcher.sent();
  assertEquals(batcher.oldest?.batch, 1);
  assertEquals(await batcher.fill(take), true);
  assertEquals(writer.announced[2]?.batch, 2);
  assertEquals(writer.announced[2]?.totals, undefined);
  assertEquals(writer.announced[2]?.entries.map((e) => e.id), [6, 7, 8]);
  batcher.sent();
  // The last entry, then the walk is dry.
  assertEquals(await batcher.fill(take), false);
  assertEquals(writer.announced[3]?.entries.map((e) => e.id), [9]);
  batcher.sent();
  batcher.sent();
  assertEquals(batcher.oldest, undefined);
  assertEquals(await batcher.fill(take), false);
  assertEquals(writer.announced.length, 4);
});

Deno.test("batcher: never more than 512 entries a batch, whatever the receiver allows", async () => {
  const { writer, batcher } = setUp();
  assertEquals(batcher.maxEntries, BATCH_ENTRIES);
  await batcher.fill(takeFrom(Array.from({ length: 1100 }, (_, i) => entry(i))));
  assertEquals(writer.announced.map((a) => a.entries.length), [512, 512]);
});

Deno.test("batcher: each ANNOUNCE goes out before the next batch is walked", async () => {
  const { writer, batcher } = setUp();
  const entries = Array.from({ length: 1000 }, (_, i) => entry(i));
  /** The flushes done when each entry was taken. */
  const flushedBefore: number[] = [];
  await batcher.fill(() => {
    flushedBefore.push(writer.flushes);
    return Promise.resolve(entries.shift() ?? null);
  });
  assertEquals(writer.announced.map((a) => a.entries.length), [512, 488]);
  // Entries 0-511 were taken before anything went out; 512 on, the first batch had gone.
  assertEquals(flushedBefore.slice(0, 512), new Array(512).fill(0));
  assertEquals(flushedBefore[512], 1);
  assertEquals(writer.flushes, 2);
});

Deno.test("batcher: a batch is cut by its JSON size, and the entry that did not fit opens the next", async () => {
  const { writer, batcher } = setUp({ maxBatchEntries: 4096, maxFrame: 4096 });
  assertEquals(batcher.maxBytes, 4096 - 64);
  const long = (id: number) => entry(id, `${"d".repeat(1200)}/${id}`);
  await batcher.fill(takeFrom([long(0), long(1), long(2), long(3), long(4)]));
  const sizes = writer.announced.map((a) => a.entries.map((e) => e.id));
  assertEquals(sizes, [[0, 1, 2], [3, 4]]);
  for (const a of writer.announced) {
    assert(new TextEncoder().encode(JSON.stringify(a)).length <= 4096);
  }
});

Deno.test("batcher: an entry too long for any ANNOUNCE fails alone", async () => {
  const { writer, events, outcomes, batcher } = setUp({ maxBatchEntries: 4096, maxFrame: 4096 });
  await batcher.fill(takeFrom([entry(0), entry(1, "x".repeat(5000)), entry(2)]));
  // It does not fit behind entry 0, and alone it cannot open the next batch: it fails.
  assertEquals(writer.announced.map((a) => a.entries.map((e) => e.id)), [[0], [2]]);
  assertEquals(events, [{
    type: "file-failed",
    path: "x".repeat(5000),
    reason: "its name is too long for the receiver's message limit",
  }]);
  assertEquals(outcomes.tally.failed, 1);
});

Deno.test("batcher: the totals go on the first ANNOUNCE after they are known, once", async () => {
  let totals: Totals | null = null;
  const { writer, batcher } = setUp({ maxBatchEntries: 1, maxFrame: 1 << 20 }, () => totals);
  const take = takeFrom(Array.from({ length: 5 }, (_, i) => entry(i)));
  await batcher.fill(take);
  totals = { files: 5, bytes: 5 };
  batcher.sent();
  await batcher.fill(take);
  batcher.sent();
  await batcher.fill(take);
  assertEquals(writer.announced.map((a) => a.totals ?? null), [
    null,
    null,
    { files: 5, bytes: 5 },
    null,
  ]);
});

Deno.test("batcher: totals that would not fit the frame are left out, and tried again later", async () => {
  const most = Number.MAX_SAFE_INTEGER;
  let totals: Totals | null = { files: most, bytes: most };
  const { writer, batcher } = setUp({ maxBatchEntries: 4096, maxFrame: 4096 }, () => totals);
  // One entry as long as an ANNOUNCE can hold (64 + its JSON + 1 = maxFrame): no room for totals.
  const bare = JSON.stringify({ id: 0, path: "", kind: "file", size: 1, mtime: 0, mode: 0o644 });
  await batcher.fill(takeFrom([entry(0, "y".repeat(4096 - 64 - 1 - bare.length))]));
  assertEquals(writer.announced.length, 1);
  assertEquals(writer.announced[0]?.totals, undefined);
  batcher.sent();
  totals = { files: 2, bytes: 2 };
  await batcher.fill(takeFrom([entry(1)]));
  assertEquals(writer.announced[1]?.totals, { files: 2, bytes: 2 });
});

Deno.test("batcher: nothing to announce, nothing written", async () => {
  const { writer, plans, batcher } = setUp();
  assertEquals(await batcher.fill(takeFrom([])), false);
  assertEquals(writer.announced.length, 0);
  assertEquals(writer.flushes, 0);
  assertEquals(plans.expected, []);
});

Deno.test("utf8Length counts what TextEncoder would write, without encoding", () => {
  const encoder = new TextEncoder();
  for (
    const text of [
      "",
      "abc",
      "é",
      "日本",
      "😀x",
      "\ud800",
      "a\udc00b",
      "\ud800\ud800",
      "ü😀日\u0000",
    ]
  ) {
    assertEquals(utf8Length(text), encoder.encode(text).length, JSON.stringify(text));
  }
});
