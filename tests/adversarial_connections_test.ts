/**
 * Adversarial tests of the receiver, connections: truncated frames, senders
 * that vanish, and several clients at once, some of them stalling.
 *
 * The arena every test runs in, and what it checks afterwards: _arena.ts.
 */
import { assert, assertEquals } from "@std/assert";
import { join } from "node:path";
import { FrameType } from "../src/protocol/frame.ts";
import { encodePreamble } from "../src/protocol/preamble.ts";
import { listTree, randomBytes } from "./_harness.ts";
import {
  announce,
  assertStillServes,
  drainRaw,
  encoder,
  file,
  fileEnd,
  finish,
  frameBytes,
  inArena,
  readAcks,
  sendData,
  sendFile,
  sessionsEnded,
  stagedFiles,
  STREAMED,
  waitForStaged,
} from "./_arena.ts";

// ---------------------------------------------------------------------------
// 5. Truncated frames and disconnects
// ---------------------------------------------------------------------------

const TRUNCATIONS: [what: string, tail: Uint8Array][] = [
  ["disconnects mid-file (DATA sent, no FILE_END)", new Uint8Array(0)],
  ["sends half a frame header", new Uint8Array([FrameType.DATA, 0x00])],
  ["sends a DATA header and half its payload", frameBytes(FrameType.DATA, 2000, randomBytes(1000))],
  ["sends half a FILE_END", frameBytes(FrameType.FILE_END, 45, new Uint8Array(20))],
];

for (const [what, tail] of TRUNCATIONS) {
  Deno.test(`server ends a session that ${what}, and removes the temp file`, async () => {
    await inArena(async (arena) => {
      const client = await arena.open();
      await announce(client, 0, [file(1, "partial.bin", STREAMED)]);
      await sendData(client, randomBytes(1000));
      await waitForStaged(arena.dir);
      if (tail.length > 0) await client.raw(tail);
      client.close();
      await sessionsEnded(arena.srv);
      const end = arena.srv.events.find((e) => e.type === "session-end");
      assert(end?.type === "session-end" && end.error !== undefined, "the session ended early");
      return [];
    });
  });
}

Deno.test("server keeps acknowledged files and drops the unfinished one when the sender vanishes", async () => {
  await inArena(async (arena) => {
    const client = await arena.open();
    await announce(client, 0, [file(1, "done.bin", 100), file(2, "unfinished.bin", STREAMED)]);
    const done = randomBytes(100);
    await sendFile(client, 1, done);
    assertEquals(await readAcks(client, 1), [{ id: 1, ok: true, name: "done.bin" }]);
    await sendData(client, randomBytes(60));
    await waitForStaged(arena.dir);
    client.close();
    await sessionsEnded(arena.srv);
    assertEquals(await Deno.readFile(join(arena.dir, "done.bin")), done);
    return ["done.bin"];
  });
});

const EARLY_TRUNCATIONS: [what: string, bytes: Uint8Array][] = [
  ["half a preamble", encoder.encode("FERR")],
  [
    "a preamble and half a HELLO header",
    Uint8Array.from([...encodePreamble({ version: 1, channel: 0 }), FrameType.HELLO, 0]),
  ],
  [
    "a preamble and half a HELLO",
    Uint8Array.from([
      ...encodePreamble({ version: 1, channel: 0 }),
      ...frameBytes(FrameType.HELLO, 100, encoder.encode('{"software":')),
    ]),
  ],
];

for (const [what, bytes] of EARLY_TRUNCATIONS) {
  Deno.test(`server ends a session that sends ${what} and closes`, async () => {
    await inArena(async (arena) => {
      const client = await arena.connect();
      await client.raw(bytes);
      client.conn.closeWrite();
      await drainRaw(client);
      return [];
    });
  });
}

// ---------------------------------------------------------------------------
// 9. Several clients at once
// ---------------------------------------------------------------------------

Deno.test("server serves a good client while others stall mid-file, mid-frame and mid-handshake", async () => {
  await inArena(async (arena) => {
    // Stalls mid-file: some DATA, then nothing.
    const midFile = await arena.open();
    await announce(midFile, 0, [file(1, "stalled.bin", STREAMED)]);
    await sendData(midFile, randomBytes(5000));
    await waitForStaged(arena.dir);
    // Stalls mid-frame: half an ANNOUNCE.
    const midFrame = await arena.open();
    await midFrame.raw(frameBytes(FrameType.ANNOUNCE, 1000, encoder.encode('{"batch":0,')));
    // Stalls mid-handshake: half a preamble.
    const midHandshake = await arena.connect();
    await midHandshake.raw(encoder.encode("FER"));
    // Another one mid-file, in the same directory as the good client's file.
    const other = await arena.open();
    await announce(other, 0, [file(1, "good.bin", STREAMED)]);
    await sendData(other, randomBytes(50));
    await waitForStaged(arena.dir, 2);

    await assertStillServes(arena.port, arena.dir);
    assertEquals(await listTree(arena.dir), [], "the stalled files are not under a final name");
    assertEquals((await stagedFiles(arena.dir)).length, 2);

    for (const c of [midFile, midFrame, midHandshake, other]) c.close();
    return [];
  });
});

Deno.test("server keeps concurrent honest senders of the same name apart", async () => {
  await inArena(async (arena) => {
    // One after the other: an address runs at most 2 key exchanges at once (more are told
    // "busy", which ferry's sender retries and this raw client does not). The sessions then run
    // concurrently.
    const clients = [];
    for (let i = 0; i < 5; i++) clients.push(await arena.open());
    const data = clients.map(() => randomBytes(10_000));
    for (const c of clients) await announce(c, 0, [file(1, "same.bin", 10_000)]);
    // Interleave their data, then finish them all at once.
    for (let off = 0; off < 10_000; off += 2_500) {
      for (const [i, c] of clients.entries()) {
        await c.send(FrameType.DATA, data[i]!.subarray(off, off + 2_500));
      }
    }
    await Promise.all(clients.map((c, i) => c.send(FrameType.FILE_END, fileEnd(1, data[i]!))));
    const names = await Promise.all(clients.map(async (c) => (await readAcks(c, 1))[0]!.name!));
    await Promise.all(clients.map((c) => finish(c)));
    const expected = ["same.bin", ...[1, 2, 3, 4].map((n) => `same (${n}).bin`)];
    assertEquals([...names].sort(), [...expected].sort());
    for (const [i, name] of names.entries()) {
      assertEquals(await Deno.readFile(join(arena.dir, name)), data[i], name);
    }
    return expected;
  });
});
