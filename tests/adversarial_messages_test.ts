/**
 * Adversarial tests of the receiver, frames and messages: every protocol
 * violation after the handshake ends the session with its ERROR code, and what
 * the server tolerates.
 *
 * The arena every test runs in, and what it checks afterwards: _arena.ts.
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { join } from "node:path";
import { encodeFileAbort, FrameType } from "../src/protocol/frame.ts";
import type { Decision } from "../src/protocol/messages.ts";
import { Channel, encodePreamble, PROTOCOL_VERSION } from "../src/protocol/preamble.ts";
import { randomBytes, RawClient } from "./_harness.ts";
import {
  announce,
  type Arena,
  dirEntry,
  encoder,
  expectError,
  expectFrame,
  expectSilentOrError,
  file,
  fileEnd,
  finish,
  frameBytes,
  inArena,
  readAcks,
  sendData,
  sendFile,
  type Settings,
  STREAMED,
  waitForStaged,
} from "./_arena.ts";

interface Violation {
  what: string;
  code: string;
  /** Runs after the handshake; sends the violation. */
  act: (client: RawClient, arena: Arena) => Promise<void>;
  /** What DIR holds afterwards (besides nothing). */
  keep?: string[];
  server?: Settings;
  /** The server may also just close (no need to answer a sender's own ERROR). */
  mayBeSilent?: boolean;
}

const empty = new Uint8Array(0);

const VIOLATIONS: Violation[] = [
  {
    what: "an unknown frame type",
    code: "bad-frame",
    act: (c) => c.raw(frameBytes(0x55, 0)),
  },
  {
    what: "DATA before any ANNOUNCE",
    code: "bad-sequence",
    act: (c) => c.send(FrameType.DATA, randomBytes(10)),
  },
  {
    what: "FILE_END before any ANNOUNCE",
    code: "bad-sequence",
    act: (c) => c.send(FrameType.FILE_END, fileEnd(0, empty)),
  },
  {
    what: "FILE_ABORT before any ANNOUNCE",
    code: "bad-sequence",
    act: (c) => c.send(FrameType.FILE_ABORT, encodeFileAbort({ id: 0, reason: "x" })),
  },
  {
    what: "DATA for an entry that was refused",
    code: "bad-sequence",
    act: async (c) => {
      assertEquals((await announce(c, 0, [file(1, "../x", 3)]))[0]!.action, "refuse");
      await c.send(FrameType.DATA, encoder.encode("abc"));
    },
  },
  {
    what: "DATA for an entry that was skipped",
    code: "bad-sequence",
    server: { onConflict: "skip" },
    keep: ["exists.txt"],
    act: async (c, arena) => {
      await Deno.writeFile(join(arena.dir, "exists.txt"), encoder.encode("x"));
      assertEquals((await announce(c, 0, [file(1, "exists.txt", 3)]))[0]!.action, "skip");
      await c.send(FrameType.DATA, encoder.encode("abc"));
    },
  },
  {
    what: "FILE_END with the wrong id",
    code: "bad-sequence",
    act: async (c, arena) => {
      await announce(c, 0, [file(1, "a.bin", STREAMED)]);
      const data = randomBytes(10);
      await sendData(c, data);
      await waitForStaged(arena.dir);
      await c.send(FrameType.FILE_END, fileEnd(2, data));
    },
  },
  {
    what: "FILE_END for a later file, skipping the current one",
    code: "bad-sequence",
    act: async (c) => {
      await announce(c, 0, [file(1, "a.bin", 0), file(2, "b.bin", 0)]);
      await c.send(FrameType.FILE_END, fileEnd(2, empty));
    },
  },
  {
    what: "FILE_ABORT with the wrong id",
    code: "bad-sequence",
    act: async (c) => {
      await announce(c, 0, [file(1, "a.bin", 10)]);
      await c.send(FrameType.FILE_ABORT, encodeFileAbort({ id: 9, reason: "x" }));
    },
  },
  {
    what: "a truncated FILE_END",
    code: "bad-frame",
    act: async (c) => {
      await announce(c, 0, [file(1, "a.bin", 0)]);
      await c.send(FrameType.FILE_END, fileEnd(1, empty).subarray(0, 12));
    },
  },
  {
    what: "a FILE_END whose digest length disagrees with the frame",
    code: "bad-frame",
    act: async (c) => {
      await announce(c, 0, [file(1, "a.bin", 0)]);
      const end = fileEnd(1, empty);
      end[12] = 31;
      await c.send(FrameType.FILE_END, end);
    },
  },
  {
    what: "a FILE_END length beyond 2^53",
    code: "bad-frame",
    act: async (c) => {
      await announce(c, 0, [file(1, "a.bin", 0)]);
      const end = fileEnd(1, empty);
      new DataView(end.buffer).setUint32(4, 0xffff_ffff);
      await c.send(FrameType.FILE_END, end);
    },
  },
  {
    what: "a FILE_ABORT shorter than its id",
    code: "bad-frame",
    act: async (c) => {
      await announce(c, 0, [file(1, "a.bin", 10)]);
      await c.send(FrameType.FILE_ABORT, new Uint8Array([0, 0, 1]));
    },
  },
  {
    what: "a first batch numbered 1",
    code: "bad-sequence",
    act: (c) => c.json(FrameType.ANNOUNCE, { batch: 1, entries: [file(1, "a", 1)] }),
  },
  {
    what: "batch 0 announced twice",
    code: "bad-sequence",
    act: async (c) => {
      await announce(c, 0, [file(1, "a", 0)]);
      await c.json(FrameType.ANNOUNCE, { batch: 0, entries: [file(2, "b", 0)] });
    },
  },
  {
    what: "a batch number that skips ahead",
    code: "bad-sequence",
    act: async (c) => {
      await announce(c, 0, [dirEntry(1, "a")]);
      await c.json(FrameType.ANNOUNCE, { batch: 2, entries: [dirEntry(2, "b")] });
    },
    keep: ["a"], // accepted in batch 0, before the violation
  },
  {
    what: "DONE while an announced file is unsent",
    code: "bad-sequence",
    act: async (c) => {
      await announce(c, 0, [file(1, "a.bin", 10)]);
      await c.send(FrameType.DONE, empty);
    },
  },
  {
    what: "DONE in the middle of a file",
    code: "bad-sequence",
    act: async (c, arena) => {
      await announce(c, 0, [file(1, "a.bin", STREAMED)]);
      await sendData(c, randomBytes(5));
      await waitForStaged(arena.dir);
      await c.send(FrameType.DONE, empty);
    },
  },
  ...([
    ["HELLO", FrameType.HELLO],
    ["WELCOME", FrameType.WELCOME],
    ["PLAN", FrameType.PLAN],
    ["ACK", FrameType.ACK],
    ["BYE", FrameType.BYE],
  ] as const).map(([name, type]): Violation => ({
    what: `a ${name} frame (not allowed from a sender)`,
    code: "unexpected-frame",
    act: (c) => c.json(type, { batch: 0, decisions: [], acks: [], files: 0, bytes: 0, failed: 0 }),
  })),
  {
    what: "a NOOP from a sender that did not name sync",
    code: "unexpected-frame",
    act: (c) => c.send(FrameType.NOOP, empty),
  },
  {
    what: "an ERROR frame",
    code: "peer-error",
    act: (c) => c.json(FrameType.ERROR, { code: "x", message: "sender gives up" }),
    mayBeSilent: true,
  },
  {
    what: "an ANNOUNCE that is not JSON",
    code: "bad-message",
    act: (c) => c.send(FrameType.ANNOUNCE, encoder.encode("{not json")),
  },
  {
    what: "an ANNOUNCE that is not UTF-8",
    code: "bad-message",
    act: (c) => c.send(FrameType.ANNOUNCE, Uint8Array.from([0x7b, 0xff, 0xfe, 0x7d])),
  },
  {
    what: "an ANNOUNCE that is a JSON array",
    code: "bad-message",
    act: (c) => c.json(FrameType.ANNOUNCE, [file(1, "a", 1)]),
  },
  {
    what: "an ANNOUNCE nested a million levels deep",
    code: "bad-message",
    act: (c) => c.send(FrameType.ANNOUNCE, encoder.encode("[".repeat(1_000_000))),
  },
  {
    what: "an ANNOUNCE with no entries",
    code: "bad-message",
    act: (c) => c.json(FrameType.ANNOUNCE, { batch: 0, entries: [] }),
  },
  {
    what: "an ANNOUNCE with a negative batch",
    code: "bad-message",
    act: (c) => c.json(FrameType.ANNOUNCE, { batch: -1, entries: [file(1, "a", 1)] }),
  },
  {
    what: "an entry without an id",
    code: "bad-message",
    act: (c) => c.json(FrameType.ANNOUNCE, { batch: 0, entries: [{ path: "a", kind: "file" }] }),
  },
  {
    what: "an entry id beyond u32",
    code: "bad-message",
    act: (c) => c.json(FrameType.ANNOUNCE, { batch: 0, entries: [file(2 ** 32, "a", 1)] }),
  },
  {
    what: "an entry that is null",
    code: "bad-message",
    act: (c) => c.json(FrameType.ANNOUNCE, { batch: 0, entries: [null] }),
  },
];

for (const v of VIOLATIONS) {
  Deno.test(`server ends the session with ERROR "${v.code}" on ${v.what}`, async () => {
    await inArena(async (arena) => {
      const client = await arena.open();
      await v.act(client, arena);
      if (v.mayBeSilent) await expectSilentOrError(client, v.code);
      else await expectError(client, v.code);
      return v.keep ?? [];
    }, { server: v.server });
  });
}

Deno.test("server ends a session that sends another frame instead of HELLO", async () => {
  const cases: [what: string, bytes: Uint8Array, code: string][] = [
    ["an ANNOUNCE", frameBytes(FrameType.ANNOUNCE, 2, encoder.encode("{}")), "unexpected-frame"],
    ["DATA", frameBytes(FrameType.DATA, 3, encoder.encode("abc")), "unexpected-frame"],
    ["DONE", frameBytes(FrameType.DONE, 0), "unexpected-frame"],
    [
      "a HELLO that is not JSON",
      frameBytes(FrameType.HELLO, 2, encoder.encode("hi")),
      "bad-message",
    ],
    [
      "a HELLO with no digests",
      frameBytes(FrameType.HELLO, 2, encoder.encode("{}")),
      "bad-message",
    ],
    ["an unknown frame type", frameBytes(0x99, 0), "bad-frame"],
  ];
  await inArena(async (arena) => {
    for (const [what, bytes, code] of cases) {
      const client = await arena.connect();
      assert(await client.channel(), what);
      await client.raw(bytes);
      await expectError(client, code);
      client.close();
    }
    // An ERROR instead of HELLO ends the session too; the receiver does not answer it.
    const client = await arena.connect();
    assert(await client.channel());
    await client.json(FrameType.ERROR, { code: "x", message: "never mind" });
    assertEquals(await client.drain(), []);
    return [];
  });
});

Deno.test("server ignores unknown JSON fields, including '__proto__', and the reserved preamble byte", async () => {
  await inArena(async (arena) => {
    const client = await arena.connect();
    const preamble = encodePreamble({ version: PROTOCOL_VERSION, channel: Channel.cpace });
    preamble[7] = 0xff; // reserved: ignored when received
    assert(await client.channel({ preamble }));
    await client.send(
      FrameType.HELLO,
      encoder.encode('{"software":"x","digests":["md5","sha256"],"__proto__":{"digests":[]}}'),
    );
    assertEquals((await expectFrame(client, FrameType.WELCOME)).digest, "sha256");
    const entries = `[
      {"id":1,"path":"kept.txt","kind":"file","size":2,"mtime":0,"mode":420,
       "__proto__":{"path":"../escaped.txt"},"constructor":{"prototype":{"x":1}},"extra":true},
      {"id":2,"kind":"file","size":2,"mtime":0,"mode":420,"__proto__":{"path":"../escaped.txt"}}
    ]`;
    await client.send(
      FrameType.ANNOUNCE,
      encoder.encode(`{"batch":0,"entries":${entries},"__proto__":{"batch":7},"more":[1,2]}`),
    );
    const plan = await expectFrame(client, FrameType.PLAN);
    const decisions = plan.decisions as Decision[];
    assertEquals(decisions.map((d) => d.action), ["accept", "refuse"]);
    assertMatch(decisions[1]!.reason ?? "", /path/);
    await sendFile(client, 1, encoder.encode("hi"));
    assertEquals(await readAcks(client, 1), [{ id: 1, ok: true, name: "kept.txt" }]);
    await finish(client);
    return ["kept.txt"];
  });
});

Deno.test("server accepts an ANNOUNCE between two DATA frames of one file", async () => {
  await inArena(async (arena) => {
    const client = await arena.open();
    const one = randomBytes(1000);
    const two = randomBytes(10);
    await announce(client, 0, [file(1, "one.bin", 1000)]);
    await client.send(FrameType.DATA, one.subarray(0, 400));
    assertEquals((await announce(client, 1, [file(2, "two.bin", 10)]))[0]!.action, "accept");
    await client.send(FrameType.DATA, one.subarray(400));
    await client.send(FrameType.FILE_END, fileEnd(1, one));
    await sendFile(client, 2, two);
    const acks = await readAcks(client, 2);
    assertEquals(acks.map((a) => [a.id, a.ok, a.name]), [[1, true, "one.bin"], [
      2,
      true,
      "two.bin",
    ]]);
    await finish(client);
    assertEquals(await Deno.readFile(join(arena.dir, "one.bin")), one);
    assertEquals(await Deno.readFile(join(arena.dir, "two.bin")), two);
    return ["one.bin", "two.bin"];
  });
});
