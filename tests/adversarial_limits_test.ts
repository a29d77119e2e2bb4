/**
 * Adversarial tests of the receiver, limits and batches: oversized and
 * negative lengths, frames and batches over the limits, and duplicate entries
 * and ids.
 *
 * The arena every test runs in, and what it checks afterwards: _arena.ts.
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { join } from "node:path";
import { FrameType } from "../src/protocol/frame.ts";
import { MAX_BATCH_ENTRIES, MAX_FRAME_PAYLOAD } from "../src/protocol/limits.ts";
import type { Decision } from "../src/protocol/messages.ts";
import { defined } from "./_expect.ts";
import { randomBytes } from "./_harness.ts";
import {
  announce,
  encoder,
  expectError,
  expectFrame,
  file,
  finish,
  frameBytes,
  inArena,
  type Json,
  readAcks,
  sendFile,
} from "./_arena.ts";

// ---------------------------------------------------------------------------
// 3. Oversized and negative lengths
// ---------------------------------------------------------------------------

Deno.test("server refuses entries with a negative, fractional, huge or non-numeric size", async () => {
  await inArena(async (arena) => {
    const client = await arena.open();
    const sizes: unknown[] = [-1, 1.5, 2 ** 53, "12", 1e300, -0.5, true, [], {}, undefined];
    const entries = sizes.map((size, i) => file(i + 1, `bad-${i}.bin`, size));
    const okId = sizes.length + 1;
    const decisions = await announce(client, 0, [...entries, file(okId, "ok.bin", 2)]);
    for (const [i, size] of sizes.entries()) {
      const decision = decisions[i]!; // announce() checked one decision per entry
      assertEquals(decision.action, "refuse", `size ${JSON.stringify(size)}`);
      assertMatch(decision.reason ?? "", /size/);
    }
    assertEquals(decisions.at(-1)?.action, "accept");
    const data = encoder.encode("ok");
    await sendFile(client, okId, data);
    assertEquals(await readAcks(client, 1), [{ id: okId, ok: true, name: "ok.bin" }]);
    await finish(client);
    return ["ok.bin"];
  });
});

Deno.test("server refuses entries with a bad mtime, mode or kind", async () => {
  await inArena(async (arena) => {
    const client = await arena.open();
    const bad: Json[] = [
      file(1, "m1", 1, { mtime: 1e300 }),
      file(2, "m2", 1, { mtime: "yesterday" }),
      file(3, "m3", 1, { mode: 0o10000 }),
      file(4, "m4", 1, { mode: -1 }),
      file(5, "m5", 1, { kind: "symlink" }),
      file(6, "m6", 1, { kind: "dir" }), // a directory with a size
      file(7, "m7", 1, { path: 42 }),
    ];
    const decisions = await announce(client, 0, bad);
    assertEquals(decisions.map((d) => d.action), bad.map(() => "refuse"));
    await finish(client);
    return [];
  });
});

Deno.test("server with maxSize 1000 refuses size 1001 and a streamed file that grows past it", async () => {
  await inArena(async (arena) => {
    const client = await arena.open();
    const decisions = await announce(client, 0, [
      file(1, "too-big.bin", 1001),
      file(2, "exact.bin", 1000),
      file(3, "streamed.bin", null),
    ]);
    assertEquals(decisions.map((d) => d.action), ["refuse", "accept", "accept"]);
    assertMatch(decisions[0]!.reason ?? "", /1000/);
    const exact = randomBytes(1000);
    await sendFile(client, 2, exact);
    assertEquals(await readAcks(client, 1), [{ id: 2, ok: true, name: "exact.bin" }]);
    const tooMuch = randomBytes(1001);
    await sendFile(client, 3, tooMuch);
    const ack = (await readAcks(client, 1))[0]!;
    assertEquals([ack.id, ack.ok], [3, false]);
    assertMatch(ack.reason ?? "", /1000/);
    await finish(client);
    assertEquals(await Deno.readFile(join(arena.dir, "exact.bin")), exact);
    return ["exact.bin"];
  }, { server: { maxSize: 1000 } });
});

const OVERSIZED_HEADERS: [what: string, bytes: Uint8Array][] = [
  ["DATA declaring 0xFFFFFFFF bytes", frameBytes(FrameType.DATA, 0xffff_ffff)],
  [
    "ANNOUNCE declaring one byte over the frame limit",
    frameBytes(FrameType.ANNOUNCE, MAX_FRAME_PAYLOAD + 1),
  ],
  ["FILE_END declaring 1 MiB", frameBytes(FrameType.FILE_END, MAX_FRAME_PAYLOAD)],
  ["DONE with a payload", frameBytes(FrameType.DONE, 1, new Uint8Array(1))],
];

for (const [what, bytes] of OVERSIZED_HEADERS) {
  Deno.test(`server answers a frame header of ${what} with ERROR "frame-too-large" and closes`, async () => {
    await inArena(async (arena) => {
      const client = await arena.open();
      await client.raw(bytes);
      const message = await expectError(client, "frame-too-large");
      assertMatch(message, /limit/);
      return [];
    });
  });
}

Deno.test(`server answers an oversized frame header sent instead of HELLO with "frame-too-large"`, async () => {
  await inArena(async (arena) => {
    const client = await arena.connect();
    assert(await client.channel(), "the server's preamble");
    await client.raw(frameBytes(FrameType.HELLO, 0xffff_ffff));
    await expectError(client, "frame-too-large");
    return [];
  });
});

Deno.test(`server answers an ANNOUNCE of ${MAX_BATCH_ENTRIES + 1} entries with ERROR "too-many-entries"`, async () => {
  await inArena(async (arena) => {
    const client = await arena.open();
    const entries = Array.from(
      { length: MAX_BATCH_ENTRIES + 1 },
      (_, i) => file(i + 1, `f${i}`, 1),
    );
    await client.json(FrameType.ANNOUNCE, { batch: 0, entries });
    await expectError(client, "too-many-entries");
    return [];
  });
});

Deno.test("server bounds how many entries a sender announces ahead of their data", async () => {
  await inArena(async (arena) => {
    const client = await arena.open();
    let id = 1;
    // The announce window is 4 batches ahead; 5 full batches fill the queue.
    for (let batch = 0; batch < 5; batch++) {
      const entries = Array.from({ length: MAX_BATCH_ENTRIES }, () => file(id, `f${id++}`, 1));
      await client.json(FrameType.ANNOUNCE, { batch, entries });
    }
    for (let batch = 0; batch < 5; batch++) await expectFrame(client, FrameType.PLAN);
    await client.json(FrameType.ANNOUNCE, { batch: 5, entries: [file(id, "one-more", 1)] });
    await expectError(client, "too-many-entries");
    return [];
  });
});

// ---------------------------------------------------------------------------
// 7. Duplicate entries and ids
// ---------------------------------------------------------------------------

Deno.test("server keeps both copies of a path announced twice in one batch", async () => {
  await inArena(async (arena) => {
    const client = await arena.open();
    const first = randomBytes(300);
    const second = randomBytes(400);
    const decisions = await announce(client, 0, [file(1, "a.txt", 300), file(2, "a.txt", 400)]);
    assertEquals(decisions.map((d) => d.action), ["accept", "accept"]);
    await sendFile(client, 1, first);
    await sendFile(client, 2, second);
    const acks = await readAcks(client, 2);
    assertEquals(acks, [
      { id: 1, ok: true, name: "a.txt" },
      { id: 2, ok: true, name: "a (1).txt" },
    ]);
    await finish(client);
    assertEquals(await Deno.readFile(join(arena.dir, "a.txt")), first);
    assertEquals(await Deno.readFile(join(arena.dir, "a (1).txt")), second);
    return ["a.txt", "a (1).txt"];
  });
});

Deno.test("server keeps both copies of a path announced in two batches", async () => {
  await inArena(async (arena) => {
    const client = await arena.open();
    const first = randomBytes(300);
    const second = randomBytes(400);
    // Both batches are announced before any data, as a pipelining sender does.
    await client.json(FrameType.ANNOUNCE, { batch: 0, entries: [file(1, "a.txt", 300)] });
    await client.json(FrameType.ANNOUNCE, { batch: 1, entries: [file(2, "a.txt", 400)] });
    for (const batch of [0, 1]) {
      const plan = await expectFrame(client, FrameType.PLAN);
      assertEquals(plan.batch, batch);
      assertEquals(defined((plan.decisions as Decision[])[0], "a decision").action, "accept");
    }
    await sendFile(client, 1, first);
    assertEquals(await readAcks(client, 1), [{ id: 1, ok: true, name: "a.txt" }]);
    await sendFile(client, 2, second);
    assertEquals(await readAcks(client, 1), [{ id: 2, ok: true, name: "a (1).txt" }]);
    await finish(client);
    assertEquals(await Deno.readFile(join(arena.dir, "a.txt")), first);
    assertEquals(await Deno.readFile(join(arena.dir, "a (1).txt")), second);
    return ["a.txt", "a (1).txt"];
  });
});

const BAD_IDS: [what: string, batches: Json[][]][] = [
  ["a repeated id in one batch", [[file(1, "a", 1), file(1, "b", 1)]]],
  ["a decreasing id in one batch", [[file(5, "a", 1), file(3, "b", 1)]]],
  ["an id repeated in the next batch", [[file(5, "a", 1)], [file(5, "b", 1)]]],
  ["a decreasing id in the next batch", [[file(5, "a", 1)], [file(4, "b", 1)]]],
  ["a repeated id on a refused entry", [[file(1, "../a", 1), file(1, "b", 1)]]],
];

for (const [what, batches] of BAD_IDS) {
  Deno.test(`server ends the session with ERROR "bad-sequence" on ${what}`, async () => {
    await inArena(async (arena) => {
      const client = await arena.open();
      for (const [batch, entries] of batches.entries()) {
        if (batch < batches.length - 1) await announce(client, batch, entries);
        else await client.json(FrameType.ANNOUNCE, { batch, entries });
      }
      assertMatch(await expectError(client, "bad-sequence"), /id/);
      return [];
    });
  });
}
