/**
 * Adversarial tests of the receiver, files and digests: lying sizes, lengths
 * and digests, the order of ACKs, resume offers, the digest a session uses,
 * and what a stored file keeps.
 *
 * The arena every test runs in, and what it checks afterwards: _arena.ts.
 */
import { assertEquals, assertMatch } from "@std/assert";
import { join } from "node:path";
import {
  encodeFileAbort,
  encodeFileStart,
  type FileEnd,
  FrameType,
  type FrameTypeCode,
} from "../src/protocol/frame.ts";
import { MAX_FRAME_PAYLOAD } from "../src/protocol/limits.ts";
import { loadDigest } from "../src/protocol/digests.ts";
import { listTree, randomBytes, sha256, waitFor } from "./_harness.ts";
import {
  announce,
  dirEntry,
  file,
  fileEnd,
  finish,
  inArena,
  MTIME,
  readAcks,
  sendData,
  sendFile,
  sessionsEnded,
  stagedFiles,
} from "./_arena.ts";

// ---------------------------------------------------------------------------
// 4. Lying sizes, lengths and digests
// ---------------------------------------------------------------------------

interface LieCase {
  what: string;
  size: number | null;
  data: Uint8Array;
  /** How FILE_END lies, or "abort" to send FILE_ABORT instead. */
  end: Partial<FileEnd> | "abort";
  reason?: RegExp;
}

Deno.test("server rejects files whose size, length or digest lies, and stores the honest one", async () => {
  const twenty = randomBytes(20);
  const flipped = sha256(twenty);
  flipped[0]! ^= 1;
  const cases: LieCase[] = [
    { what: "sends 20 bytes, announced 10", size: 10, data: twenty, end: {} },
    { what: "sends 50 bytes, announced 100", size: 100, data: randomBytes(50), end: {} },
    { what: "FILE_END length 25 for 20 bytes", size: 20, data: twenty, end: { length: 25 } },
    { what: "FILE_END length 19 for 20 bytes", size: 20, data: twenty, end: { length: 19 } },
    { what: "FILE_END length 2^40", size: 20, data: twenty, end: { length: 2 ** 40 } },
    { what: "streamed, FILE_END length 19", size: null, data: twenty, end: { length: 19 } },
    { what: "wrong digest", size: 20, data: twenty, end: { digest: flipped }, reason: /digest/ },
    {
      what: "truncated digest",
      size: 20,
      data: twenty,
      end: { digest: sha256(twenty).slice(0, 16) },
      reason: /digest/,
    },
    {
      what: "no digest",
      size: 20,
      data: twenty,
      end: { digest: new Uint8Array(0) },
      reason: /digest/,
    },
    {
      what: "streamed, wrong digest",
      size: null,
      data: twenty,
      end: { digest: flipped },
      reason: /digest/,
    },
    { what: "FILE_ABORT after some data", size: 20, data: twenty.subarray(0, 7), end: "abort" },
    { what: "FILE_ABORT before any data", size: 20, data: new Uint8Array(0), end: "abort" },
  ];
  await inArena(async (arena) => {
    const client = await arena.open();
    const honest = randomBytes(1234);
    const entries = [
      ...cases.map((c, i) => file(i + 1, `lie-${i}.bin`, c.size)),
      file(cases.length + 1, "streamed.bin", null),
    ];
    const decisions = await announce(client, 0, entries);
    assertEquals(decisions.map((d) => d.action), entries.map(() => "accept"));
    for (const [i, c] of cases.entries()) {
      const id = i + 1;
      if (c.end === "abort") {
        await sendData(client, c.data);
        await client.send(FrameType.FILE_ABORT, encodeFileAbort({ id, reason: "gave up" }));
      } else {
        await sendFile(client, id, c.data, c.end);
      }
      const ack = (await readAcks(client, 1))[0]!;
      assertEquals([ack.id, ack.ok], [id, false], c.what);
      assertEquals(ack.name, undefined, c.what);
      assertMatch(ack.reason ?? "", c.reason ?? /./, c.what);
      assertEquals(await listTree(arena.dir), [], `no file under a final name: ${c.what}`);
      assertEquals(await stagedFiles(arena.dir), [], `the temp file is removed: ${c.what}`);
    }
    const streamedId = cases.length + 1;
    await sendFile(client, streamedId, honest);
    assertEquals(await readAcks(client, 1), [{ id: streamedId, ok: true, name: "streamed.bin" }]);
    const bye = await finish(client);
    assertEquals(bye, { files: 1, bytes: 1234, failed: cases.length });
    assertEquals(await Deno.readFile(join(arena.dir, "streamed.bin")), honest);
    return ["streamed.bin"];
  });
});

Deno.test("ACKs come in the order the files ended, small files held for placing among them", async () => {
  await inArena(async (arena) => {
    const client = await arena.open();
    const small = [randomBytes(10), randomBytes(20), randomBytes(30)] as const;
    const large = randomBytes(MAX_FRAME_PAYLOAD + 4096); // past the short path for small files
    const entries = [
      file(1, "a.bin", small[0].length),
      file(2, "b.bin", 7),
      file(3, "c.bin", small[1].length),
      file(4, "large.bin", large.length),
      file(5, "e.bin", small[2].length),
      file(6, "f.bin", 5),
    ];
    const decisions = await announce(client, 0, entries);
    assertEquals(decisions.map((d) => d.action), entries.map(() => "accept"));
    // All in one write, so that the receiver ends every file before it next flushes its ACKs.
    const frames: [FrameTypeCode, Uint8Array][] = [
      [FrameType.DATA, small[0]],
      [FrameType.FILE_END, fileEnd(1, small[0])],
      [FrameType.FILE_ABORT, encodeFileAbort({ id: 2, reason: "gave up" })],
      [FrameType.DATA, small[1]],
      [FrameType.FILE_END, fileEnd(3, small[1])],
      [FrameType.DATA, large.subarray(0, MAX_FRAME_PAYLOAD)],
      [FrameType.DATA, large.subarray(MAX_FRAME_PAYLOAD)],
      [FrameType.FILE_END, fileEnd(4, large)],
      [FrameType.DATA, small[2]],
      [FrameType.FILE_END, fileEnd(5, small[2])],
      [FrameType.DATA, new Uint8Array(5)],
      [FrameType.FILE_END, fileEnd(6, new Uint8Array(5), { digest: new Uint8Array(32) })],
    ];
    for (const [type, payload] of frames) await client.writer.frame(type, payload);
    await client.writer.flush();
    const acks = await readAcks(client, 6);
    assertEquals(acks.map((a) => [a.id, a.ok]), [
      [1, true],
      [2, false],
      [3, true],
      [4, true],
      [5, true],
      [6, false],
    ]);
    assertEquals(await finish(client), { files: 4, bytes: 60 + large.length, failed: 2 });
    return ["a.bin", "c.bin", "e.bin", "large.bin"];
  });
});

Deno.test("a resume offer's prefix is the held bytes' SHA-256 even in an xxh128 session, and the file completes", async () => {
  const xxh128 = await loadDigest("xxh128");
  await inArena(async (arena) => {
    const transfer = "0123456789abcdef0123456789abcdef";
    const hello = { digests: ["xxh128", "sha256"], features: ["resume"], transfer };
    const data = randomBytes(3 * MAX_FRAME_PAYLOAD + 1000);
    const held = 2 * MAX_FRAME_PAYLOAD;
    // First session: two whole DATA frames, then the connection drops: a partial is kept.
    const first = await arena.connect();
    assertEquals((await first.handshake(undefined, hello))?.type, FrameType.WELCOME);
    assertEquals((await announce(first, 0, [file(1, "big.bin", data.length)]))[0]!.offset, 0);
    await sendData(first, data.subarray(0, held), MAX_FRAME_PAYLOAD);
    await waitFor("the partial to hold what was sent", async () => {
      for await (const e of Deno.readDir(join(arena.dir, ".ferry", "partial"))) {
        if ((await Deno.stat(join(arena.dir, ".ferry", "partial", e.name))).size === held) {
          return true;
        }
      }
      return false;
    });
    first.close();
    await sessionsEnded(arena.srv);
    // Second session: offered the held bytes, named by their SHA-256.
    const second = await arena.connect();
    assertEquals((await second.handshake(undefined, hello))?.type, FrameType.WELCOME);
    const decision = (await announce(second, 0, [file(1, "big.bin", data.length)]))[0]!;
    assertEquals(decision.offset, held);
    const hex = Array.from(sha256(data.subarray(0, held)), (b) => b.toString(16).padStart(2, "0"));
    assertEquals(decision.prefix, hex.join(""));
    await second.send(FrameType.FILE_START, encodeFileStart({ id: 1, offset: held }));
    await sendFile(second, 1, data.subarray(held), {
      length: data.length,
      digest: xxh128.of(data),
    });
    assertEquals(await readAcks(second, 1), [{ id: 1, ok: true, name: "big.bin" }]);
    await finish(second);
    assertEquals(await Deno.readFile(join(arena.dir, "big.bin")), data);
    return ["big.bin"];
  });
});

Deno.test("server takes the first digest of HELLO's list that it knows", async () => {
  await inArena(async (arena) => {
    for (
      const [offer, chosen] of [
        [["sha256", "xxh128"], "sha256"],
        [["md5", "xxh128", "sha256"], "xxh128"],
        [["blake3", "sha256"], "sha256"],
      ] as const
    ) {
      const client = await arena.connect();
      const welcome = await client.handshake(undefined, { digests: [...offer] });
      assertEquals(welcome?.type, FrameType.WELCOME);
      assertEquals(JSON.parse(new TextDecoder().decode(welcome!.payload)).digest, chosen);
      await finish(client);
      client.close();
    }
    return [];
  });
});

Deno.test("server holds an xxh128 session to xxh128: a SHA-256 or altered digest fails the file", async () => {
  const xxh128 = await loadDigest("xxh128");
  await inArena(async (arena) => {
    const client = await arena.connect();
    const welcome = await client.handshake(undefined, { digests: ["xxh128", "sha256"] });
    assertEquals(welcome?.type, FrameType.WELCOME);
    assertEquals(JSON.parse(new TextDecoder().decode(welcome!.payload)).digest, "xxh128");
    const big = randomBytes(3 * 1024 * 1024 + 5); // several DATA frames: the streaming path
    const small = randomBytes(3000); // one frame: the small-file path
    const flipped = xxh128.of(small);
    flipped[15]! ^= 0x80;
    const entries = [
      file(1, "big.bin", big.length),
      file(2, "small.bin", small.length),
      file(3, "sha.bin", small.length),
      file(4, "flipped.bin", small.length),
      file(5, "sha-big.bin", big.length),
    ];
    const decisions = await announce(client, 0, entries);
    assertEquals(decisions.map((d) => d.action), entries.map(() => "accept"));
    await sendFile(client, 1, big, { digest: xxh128.of(big) });
    await sendFile(client, 2, small, { digest: xxh128.of(small) });
    await sendFile(client, 3, small); // FILE_END with SHA-256, not the session's digest
    await sendFile(client, 4, small, { digest: flipped });
    await sendFile(client, 5, big);
    const acks = await readAcks(client, 5);
    assertEquals(acks.map((a) => [a.id, a.ok]), [[1, true], [2, true], [3, false], [4, false], [
      5,
      false,
    ]]);
    for (const ack of acks.slice(2)) assertMatch(ack.reason ?? "", /digest mismatch/);
    await finish(client);
    assertEquals(await Deno.readFile(join(arena.dir, "big.bin")), big);
    assertEquals(await Deno.readFile(join(arena.dir, "small.bin")), small);
    return ["big.bin", "small.bin"];
  });
});

Deno.test("server stores a streamed (size null) file whose length and digest match", async () => {
  await inArena(async (arena) => {
    const client = await arena.open();
    const data = randomBytes(200_000);
    assertEquals((await announce(client, 0, [file(7, "piped.bin", null)]))[0]!.action, "accept");
    await sendFile(client, 7, data);
    assertEquals(await readAcks(client, 1), [{ id: 7, ok: true, name: "piped.bin" }]);
    await finish(client);
    assertEquals(await Deno.readFile(join(arena.dir, "piped.bin")), data);
    return ["piped.bin"];
  });
});

Deno.test("server strips setuid, setgid, sticky and group/other write bits, and keeps mtimes", async () => {
  await inArena(async (arena) => {
    const client = await arena.open();
    const decisions = await announce(client, 0, [
      file(1, "d/suid.bin", 1, { mode: 0o7777 }),
      dirEntry(2, "d", { mode: 0o7777 }),
    ]);
    assertEquals(decisions.map((d) => d.action), ["accept", "accept"]);
    await sendFile(client, 1, new Uint8Array([1]));
    assertEquals((await readAcks(client, 1))[0]!.ok, true);
    await finish(client);
    assertEquals((await Deno.stat(join(arena.dir, "d/suid.bin"))).mode! & 0o7777, 0o755);
    assertEquals((await Deno.stat(join(arena.dir, "d"))).mode! & 0o7777, 0o755);
    assertEquals((await Deno.stat(join(arena.dir, "d/suid.bin"))).mtime?.getTime(), MTIME);
    assertEquals((await Deno.stat(join(arena.dir, "d"))).mtime?.getTime(), MTIME);
    return ["d", "d/suid.bin"];
  });
});
