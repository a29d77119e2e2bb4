/**
 * The receiver's limits: each refuses what is over it with a clear reason,
 * and none of them stops the server.
 */
import {
  assert,
  assertEquals,
  assertMatch,
  assertRejects,
  assertStringIncludes,
} from "@std/assert";
import { join } from "node:path";
import { FerryError } from "../src/errors.ts";
import { type SendEvent } from "../src/client/send_session.ts";
import { decodeError } from "../src/protocol/messages.ts";
import { FrameType } from "../src/protocol/frame.ts";
import { Channel, encodePreamble, PROTOCOL_VERSION } from "../src/protocol/preamble.ts";
import {
  RawClient,
  readTurnAway,
  runCli,
  sendInProcess,
  snapshot,
  spawnServe,
  startServer,
  tempDir,
  waitFor,
} from "./_harness.ts";

Deno.test("connections over --max-connections are told the receiver is busy", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const server = await startServer(join(base, "inbox"), { limits: { maxConnections: 1 } });
  const holder = await RawClient.open(server.port);
  try {
    await Deno.writeTextFile(join(base, "a.txt"), "x");
    const err = await assertRejects(
      () => sendInProcess(server.port, [join(base, "a.txt")]),
      FerryError,
    );
    assertStringIncludes(err.message, "it is busy (too many senders at once) (busy)");
    const said = await readTurnAway(server.port);
    assertEquals(said, {
      code: "busy",
      message: "the receiver is busy: 1 senders are connected; try again shortly",
    });
    holder.close();
    await new Promise((r) => setTimeout(r, 100));
    assertEquals((await sendInProcess(server.port, [join(base, "a.txt")])).files, 1);
  } finally {
    holder.close();
    await server.close();
  }
});

Deno.test("a server that stops before a sender's preamble arrives answers with its preamble and ERROR 'shutting-down'", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const server = await startServer(join(base, "inbox"));
  const client = await RawClient.connect(server.port);
  try {
    await waitFor(
      "the session to start",
      () => server.events.some((e) => e.type === "session-start"),
    );
    const closing = server.close();
    // A sender reads the receiver's preamble before anything else (PROTOCOL.md §2): an ERROR
    // without one in front would read as "not ferry".
    assertEquals(
      await client.reader.readRaw(8),
      encodePreamble({ version: PROTOCOL_VERSION, channel: Channel.plain }),
    );
    const frame = await client.reader.next();
    assertEquals(frame?.type, FrameType.ERROR);
    assertEquals(decodeError(frame!.payload), {
      code: "shutting-down",
      message: "the receiver is shutting down",
    });
    assertEquals(await client.reader.next(), null);
    await closing;
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("a server that stops between its KEY_SHARE and the sender's KEY_CONFIRM closes without a plain ERROR", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const server = await startServer(join(base, "inbox"));
  const client = await RawClient.connect(server.port);
  try {
    // The receiver's KEY_SHARE has arrived; our KEY_CONFIRM waits, unsent, in the writer.
    assert(await client.exchangeKeys());
    await server.close();
    // A sender here reads records: a plain ERROR would fail as a bad record, and ferry's sender
    // would give up instead of reconnecting as it does after a lost connection.
    assertEquals(await client.reader.next(), null);
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("a control message over --max-message ends the session with 'frame-too-large'", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const server = await startServer(join(base, "inbox"), { limits: { maxMessage: 4096 } });
  const client = await RawClient.open(server.port);
  try {
    const entries = Array.from({ length: 60 }, (_, id) => ({
      id,
      path: `file-with-a-long-name-${"x".repeat(40)}-${id}`,
      kind: "file",
      size: 1,
      mtime: 0,
      mode: 0o644,
    }));
    await client.json(FrameType.ANNOUNCE, { batch: 0, entries });
    const frame = await client.next();
    assertEquals(frame?.type, FrameType.ERROR);
    assertEquals(decodeError(frame!.payload).code, "frame-too-large");
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("the sender honours the receiver's batch and message limits from WELCOME", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const src = join(base, "src");
  await Deno.mkdir(src);
  for (let i = 0; i < 40; i++) {
    await Deno.writeTextFile(join(src, `${"n".repeat(60)}-${i}.txt`), `${i}`);
  }
  // A path of about 3 KB: its entry alone nearly fills a 4 KB message, so it must open a batch.
  const deep = join(src, ...Array.from({ length: 12 }, (_, i) => String(i % 10).repeat(240)));
  await Deno.mkdir(deep, { recursive: true });
  await Deno.writeTextFile(join(deep, "far.txt"), "far");
  const server = await startServer(join(base, "inbox"), {
    limits: { maxBatchEntries: 3, maxMessage: 4096 },
  });
  try {
    const result = await sendInProcess(server.port, [src]);
    assertEquals(result.failed, 0);
    assertEquals(result.files, 41);
    assertEquals(await snapshot(join(base, "inbox/src")), await snapshot(src));
  } finally {
    await server.close();
  }
});

Deno.test("--max-size, --max-total and --max-entries refuse entries with a reason; the rest arrive", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const src = join(base, "src");
  await Deno.mkdir(src);
  await Deno.writeFile(join(src, "big.bin"), new Uint8Array(5000));
  for (let i = 0; i < 4; i++) await Deno.writeFile(join(src, `s${i}.bin`), new Uint8Array(900));
  for (
    const [limits, reason, failed] of [
      [{ maxSize: 1000 }, /larger than the receiver's limit of 1000 bytes/, 1],
      [{ maxTotal: 2000 }, /over the receiver's limit of 2000 bytes per session/, 3],
      [{ maxEntries: 3 }, /at most 3 entries per session/, 3],
    ] as const
  ) {
    const inbox = join(base, `inbox-${Object.keys(limits)[0]}`);
    const server = await startServer(inbox, { limits });
    const events: SendEvent[] = [];
    try {
      const result = await sendInProcess(server.port, [src], { events });
      assertEquals(result.failed, failed, JSON.stringify(limits));
      const failures = events.filter((e) => e.type === "file-failed");
      assert(
        failures.every((e) => e.type === "file-failed" && reason.test(e.reason)),
        JSON.stringify(failures),
      );
      const stored = Object.values(await snapshot(inbox)).filter((e) => e.kind === "file");
      assertEquals(stored.length, result.files);
    } finally {
      await server.close();
    }
  }
});

Deno.test("partial files and transfer records older than --keep-partial are removed; newer ones stay", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const inbox = join(base, "inbox");
  for (const dir of ["partial", "transfers"]) {
    await Deno.mkdir(join(inbox, ".ferry", dir), { recursive: true });
  }
  const old = new Date(Date.now() - 2 * 86_400_000);
  for (const [dir, name] of [["partial", "old.part"], ["transfers", "0123456789abcdef"]] as const) {
    await Deno.writeTextFile(join(inbox, ".ferry", dir, name), "x");
    await Deno.utime(join(inbox, ".ferry", dir, name), old, old);
  }
  await Deno.writeTextFile(join(inbox, ".ferry/partial/new.part"), "x");
  const server = await startServer(inbox, { limits: { keepPartialMs: 86_400_000 } });
  try {
    assertEquals([...Deno.readDirSync(join(inbox, ".ferry/partial"))].map((e) => e.name), [
      "new.part",
    ]);
    assertEquals([...Deno.readDirSync(join(inbox, ".ferry/transfers"))], []);
  } finally {
    await server.close();
  }
});

Deno.test("serve limit flags are checked: bad values exit 2 with one line", async () => {
  for (
    const [args, message] of [
      [
        ["--keep-partial", "soon"],
        "ferry: --keep-partial must be a duration like 90s, 30m or 24h, not 'soon'",
      ],
      [["--max-batch", "5000"], "ferry: --max-batch can be at most 4096"],
      [
        ["--max-connections", "0"],
        "ferry: --max-connections must be a whole number from 1, not '0'",
      ],
      [["--max-size", "lots"], "ferry: --max-size must be a size like 500M or 2G, not 'lots'"],
      [["--max-message", "100"], "ferry: --max-message must be at least 4096 bytes"],
    ] as const
  ) {
    const result = await runCli(["serve", ...args]);
    assertEquals(result.code, 2, args.join(" "));
    assertEquals(result.stderr.trim().split("\n")[0], message);
  }
});

Deno.test("serve --max-size refuses a larger file through the CLI with the reason on the sender", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  await Deno.writeFile(join(base, "big.bin"), new Uint8Array(2048));
  const serve = await spawnServe(join(base, "inbox"), ["--max-size", "1K"]);
  try {
    const sent = await runCli(["send", join(base, "big.bin"), "--to", `127.0.0.1:${serve.port}`]);
    assertEquals(sent.code, 1);
    assertMatch(
      sent.stderr,
      /failed big\.bin: refused by the receiver: larger than the receiver's limit of 1024 bytes/,
    );
  } finally {
    await serve.stop();
  }
});
