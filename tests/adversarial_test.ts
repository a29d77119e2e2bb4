/**
 * Adversarial tests of the receiver: hostile names, lying sizes and digests,
 * truncated and garbage frames, protocol violations, symbolic links, and
 * several senders at once.
 *
 * Every test runs in an "arena": a temp folder BASE holding the server's
 * DIR (BASE/inbox) and a folder outside it (BASE/outside, with a secret).
 * After each attack the arena checks, whatever the attack was:
 *
 * - every session has ended and DIR/.ferry/tmp is empty (no staged leftovers);
 * - DIR holds exactly the names the test expects (no partial file under a
 *   final name);
 * - nothing outside DIR changed;
 * - the server still serves: a good client sends a file and it arrives
 *   byte-exact.
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { join } from "node:path";
import { send, type SendEvent } from "../src/client/send_session.ts";
import { resolveSources } from "../src/client/walk.ts";
import {
  encodeFileAbort,
  encodeFileEnd,
  encodeFileStart,
  type FileEnd,
  FrameType,
  type FrameTypeCode,
} from "../src/protocol/frame.ts";
import { MAX_BATCH_ENTRIES, MAX_FRAME_PAYLOAD } from "../src/protocol/limits.ts";
import type { Ack, Decision } from "../src/protocol/messages.ts";
import { loadDigest } from "../src/protocol/digests.ts";
import { Channel, encodePreamble, PROTOCOL_VERSION } from "../src/protocol/preamble.ts";
import type { ConflictPolicy } from "../src/server/inbox.ts";
import { SMALL_FILE_MAX } from "../src/server/small_file.ts";
import {
  listTree,
  randomBytes,
  RawClient,
  sha256,
  snapshot,
  startServer,
  tempDir,
  TEST_CODE,
  type TestServer,
  type TreeEntry,
  waitFor,
} from "./_harness.ts";

// ---------------------------------------------------------------------------
// The arena
// ---------------------------------------------------------------------------

const SECRET = new TextEncoder().encode("the secret outside DIR\n");
const MTIME = 1_700_000_000_000;

interface Arena {
  /** The temp folder holding DIR and the outside folder. */
  base: string;
  /** The server's receiving directory, BASE/inbox. */
  dir: string;
  /** A folder outside DIR, BASE/outside, holding secret.txt. */
  outside: string;
  srv: TestServer;
  port: number;
  /** A raw client that has done the handshake; closed by the arena. */
  open(): Promise<RawClient>;
  /** A raw client that has only connected; closed by the arena. */
  connect(): Promise<RawClient>;
}

/** Receiver settings the tests change. */
interface Settings {
  onConflict?: ConflictPolicy;
  maxSize?: number;
  handshakeTimeoutMs?: number;
  idleTimeoutMs?: number;
}

type StartOptions = NonNullable<Parameters<typeof startServer>[1]>;

/**
 * `settings` as startServer() options. The limits are given both flat and
 * under `limits`, so these tests run whichever form the server takes.
 */
function startOptions({ onConflict, ...limits }: Settings = {}): StartOptions {
  return { ...(onConflict ? { onConflict } : {}), ...limits, limits } as StartOptions;
}

interface ArenaOptions {
  server?: Settings;
  /** Runs before the server starts and before BASE is snapshotted. */
  prepare?: (paths: { dir: string; outside: string }) => Promise<void>;
}

/**
 * Runs `attack` against a fresh server, then checks the invariants listed at
 * the top of this file. `attack` returns the names DIR must hold afterwards.
 */
async function inArena(
  attack: (arena: Arena) => Promise<string[]>,
  options: ArenaOptions = {},
): Promise<void> {
  await using baseDir = await tempDir("ferry-adversarial-");
  const base = baseDir.path;
  const dir = join(base, "inbox");
  const outside = join(base, "outside");
  const clients: RawClient[] = [];
  const closeClients = () => {
    for (const c of clients.splice(0)) c.close();
  };
  let srv: TestServer | null = null;
  try {
    await Deno.mkdir(dir);
    await Deno.mkdir(outside);
    await Deno.writeFile(join(outside, "secret.txt"), SECRET);
    await options.prepare?.({ dir, outside });
    const before = outsideOf(await snapshot(base));
    srv = await startServer(dir, startOptions(options.server));
    const port = srv.port;
    const arena: Arena = {
      base,
      dir,
      outside,
      srv,
      port,
      async open() {
        const client = await RawClient.connect(port);
        clients.push(client);
        const welcome = await client.handshake();
        assertEquals(welcome?.type, FrameType.WELCOME, "the handshake should succeed");
        return client;
      },
      async connect() {
        const client = await RawClient.connect(port);
        clients.push(client);
        return client;
      },
    };
    const expected = await attack(arena);
    closeClients();
    await sessionsEnded(srv);
    assertEquals(await stagedFiles(dir), [], "DIR/.ferry/tmp must be empty after the sessions");
    assertEquals(await listTree(dir), [...expected].sort(), "DIR must hold only what arrived");
    assertEquals(outsideOf(await snapshot(base)), before, "nothing outside DIR may change");
    await assertStillServes(port, dir);
    assertEquals(outsideOf(await snapshot(base)), before, "nothing outside DIR may change");
  } finally {
    closeClients();
    await srv?.close();
  }
}

/** The part of a snapshot of BASE that is not DIR. */
function outsideOf(tree: Record<string, TreeEntry>): Record<string, TreeEntry> {
  return Object.fromEntries(
    Object.entries(tree).filter(([path]) => path !== "inbox" && !path.startsWith("inbox/")),
  );
}

/**
 * A size over SMALL_FILE_MAX: such a file is staged on disk as its data
 * arrives (smaller ones are held in memory until verified), so these tests
 * can watch its temp file appear and be removed.
 */
const STREAMED = SMALL_FILE_MAX + 1000;

/** Names in DIR/.ferry/tmp, where partial files are staged. */
async function stagedFiles(dir: string): Promise<string[]> {
  const names = [];
  for await (const e of Deno.readDir(join(dir, ".ferry", "tmp"))) names.push(e.name);
  return names.sort();
}

/** Waits until every session the server started has ended. */
async function sessionsEnded(srv: TestServer): Promise<void> {
  const count = (type: string) => srv.events.filter((e) => e.type === type).length;
  await waitFor(
    "every session to end",
    () => count("session-end") === count("session-start"),
    10_000,
  );
}

/** A good client (the real sender) sends a small file; it must arrive byte-exact. */
async function assertStillServes(port: number, dir: string): Promise<void> {
  await using sourceDir = await tempDir("ferry-good-client-");
  const source = sourceDir.path;
  const data = randomBytes(700); // under every maxSize a test sets
  const path = join(source, "good.bin");
  await Deno.writeFile(path, data);
  const events: SendEvent[] = [];
  const options = {
    to: { host: "127.0.0.1", port },
    sources: await resolveSources([path], "stdin"),
    connectTimeoutMs: 5_000,
    idleTimeoutMs: 10_000,
    retries: 0,
    code: TEST_CODE,
    software: "ferry/good-client",
    onEvent: (e: SendEvent) => events.push(e),
  };
  const result = await send(options as Parameters<typeof send>[0]);
  assertEquals(
    result.files,
    1,
    `a good client must still get through: ${JSON.stringify(events)}`,
  );
  assertEquals(result.failed, 0);
  const done = events.find((e) => e.type === "file-done");
  assertEquals(done?.type === "file-done" ? done.name : undefined, "good.bin");
  assertEquals(await Deno.readFile(join(dir, "good.bin")), data);
  await Deno.remove(join(dir, "good.bin"));
}

// ---------------------------------------------------------------------------
// Protocol helpers
// ---------------------------------------------------------------------------

const encoder = new TextEncoder();

interface Json {
  [key: string]: unknown;
}

/** An announced file entry; `fields` overrides any field, even with nonsense. */
function file(id: number, path: string, size: unknown, fields: Json = {}): Json {
  return { id, path, kind: "file", size, mtime: MTIME, mode: 0o644, ...fields };
}

function dirEntry(id: number, path: string, fields: Json = {}): Json {
  return { id, path, kind: "dir", size: null, mtime: MTIME, mode: 0o755, ...fields };
}

/** A FILE_END payload for `data`; `lie` overrides the length or digest. */
function fileEnd(id: number, data: Uint8Array, lie: Partial<FileEnd> = {}): Uint8Array {
  return encodeFileEnd({ id, length: data.length, digest: sha256(data), ...lie });
}

/** A frame with any header, even one that lies about its length. */
function frameBytes(
  type: number,
  declared: number,
  payload: Uint8Array = new Uint8Array(0),
): Uint8Array {
  const out = new Uint8Array(5 + payload.length);
  out[0] = type;
  new DataView(out.buffer).setUint32(1, declared);
  out.set(payload, 5);
  return out;
}

/** `value`, which must be there (the untyped assert() does not narrow). */
function present<T>(value: T | null | undefined, message: string): T {
  if (value === null || value === undefined) throw new Error(message);
  return value;
}

/** The next frame, which must be of `type`. */
async function expectFrame(client: RawClient, type: number): Promise<Json> {
  const frame = present(
    await client.next(),
    `expected frame 0x${type.toString(16)}, but the server closed`,
  );
  assertEquals(
    frame.type,
    type,
    `expected frame 0x${type.toString(16)}, got 0x${frame.type.toString(16)}: ${
      JSON.stringify(frame.json)
    }`,
  );
  return frame.json as Json;
}

/** Announces one batch and returns the server's decisions. */
async function announce(client: RawClient, batch: number, entries: Json[]): Promise<Decision[]> {
  await client.json(FrameType.ANNOUNCE, { batch, entries });
  const plan = await expectFrame(client, FrameType.PLAN);
  assertEquals(plan.batch, batch);
  const decisions = plan.decisions as Decision[];
  assertEquals(decisions.map((d) => d.id), entries.map((e) => e.id));
  return decisions;
}

/** Sends `data` as DATA frames (no FILE_END). */
async function sendData(client: RawClient, data: Uint8Array, chunk = 64 * 1024): Promise<void> {
  for (let i = 0; i < data.length; i += chunk) {
    await client.send(FrameType.DATA, data.subarray(i, i + chunk));
  }
}

/** Sends `data` and a FILE_END (honest unless `lie` says otherwise). */
async function sendFile(
  client: RawClient,
  id: number,
  data: Uint8Array,
  lie: Partial<FileEnd> = {},
): Promise<void> {
  await sendData(client, data);
  await client.send(FrameType.FILE_END, fileEnd(id, data, lie));
}

/**
 * Reads ACK frames until `n` acknowledgements have arrived; returns their
 * id, ok, name and reason (the fields these tests are about).
 */
async function readAcks(client: RawClient, n: number): Promise<Ack[]> {
  const acks: Ack[] = [];
  while (acks.length < n) {
    const frame = await expectFrame(client, FrameType.ACK);
    for (const { id, ok, name, reason } of frame.acks as Ack[]) {
      acks.push({
        id,
        ok,
        ...(name === undefined ? {} : { name }),
        ...(reason === undefined ? {} : { reason }),
      });
    }
  }
  assertEquals(acks.length, n);
  return acks;
}

/** DONE, then BYE, then the server closes. Returns BYE's counts. */
async function finish(
  client: RawClient,
): Promise<{ files: unknown; bytes: unknown; failed: unknown }> {
  await client.send(FrameType.DONE, new Uint8Array(0));
  const bye = await expectFrame(client, FrameType.BYE);
  assertEquals(await client.next(), null, "the server closes after BYE");
  return { files: bye.files, bytes: bye.bytes, failed: bye.failed };
}

/** Reads until the server closes; the last frame must be an ERROR with `code`. Returns its message. */
async function expectError(client: RawClient, code: string): Promise<string> {
  const frames = await client.drain();
  const last = present(
    frames.at(-1),
    `expected ERROR "${code}", but the server closed without a word`,
  );
  assertEquals(last.type, FrameType.ERROR, `expected ERROR "${code}": ${JSON.stringify(frames)}`);
  const error = last.json as { code: string; message: string };
  assertEquals(error.code, code, error.message);
  assert(typeof error.message === "string" && error.message.length > 0);
  return error.message;
}

/**
 * Reads until the server closes; it may say nothing or one ERROR with `code`
 * (for peers it need not answer: a non-ferry peer, a sender that sent ERROR).
 */
async function expectSilentOrError(client: RawClient, code: string): Promise<void> {
  const frames = await client.drain();
  assert(frames.length <= 1, `at most one frame: ${JSON.stringify(frames)}`);
  for (const f of frames) {
    assertEquals([f.type, (f.json as Json)?.code], [FrameType.ERROR, code]);
  }
}

/** Waits until the session has staged a partial file. */
async function waitForStaged(dir: string, n = 1): Promise<void> {
  await waitFor("the staged files", async () => (await stagedFiles(dir)).length === n);
}

function hasControlCharacter(s: string): boolean {
  return [...s].some((c) =>
    c.charCodeAt(0) <= 0x1f || (c.charCodeAt(0) >= 0x7f && c.charCodeAt(0) <= 0x9f)
  );
}

/**
 * Announces each hostile name as a file, in one batch, followed by "ok.txt";
 * every hostile name must be refused with a reason, "ok.txt" accepted and
 * stored. Returns DIR's expected content, plus `keep`.
 */
async function assertNamesRefused(
  arena: Arena,
  names: string[],
  keep: string[] = [],
): Promise<string[]> {
  const client = await arena.open();
  const entries = names.map((name, i) => file(i + 1, name, 3));
  const okId = names.length + 1;
  const decisions = await announce(client, 0, [...entries, file(okId, "ok.txt", 3)]);
  for (const [i, name] of names.entries()) {
    const d = decisions[i];
    assertEquals(d.action, "refuse", `${JSON.stringify(name)} must be refused`);
    assert(
      typeof d.reason === "string" && d.reason.length > 0,
      `a reason for ${JSON.stringify(name)}`,
    );
    assert(!hasControlCharacter(d.reason ?? ""), `the reason must not echo control characters`);
  }
  assertEquals(decisions.at(-1)?.action, "accept", "a valid entry in the same batch is accepted");
  const data = encoder.encode("ok\n");
  await sendFile(client, okId, data);
  assertEquals(await readAcks(client, 1), [{ id: okId, ok: true, name: "ok.txt" }]);
  const bye = await finish(client);
  assertEquals(bye, { files: 1, bytes: 3, failed: names.length });
  assertEquals(await Deno.readFile(join(arena.dir, "ok.txt")), data);
  return ["ok.txt", ...keep];
}

// ---------------------------------------------------------------------------
// 1, 2. Hostile names
// ---------------------------------------------------------------------------

const HOSTILE_NAMES: [group: string, names: string[]][] = [
  ["'..' traversal names", [
    "../x",
    "a/../../x",
    "..",
    "a/..",
    "../outside/secret.txt",
    "../outside/x",
  ]],
  ["'.' components", ["./a", "a/./b", ".", "a/."]],
  ["absolute paths", ["/etc/x", "/tmp/x", "/", "//x"]],
  ["Windows drive names", ["C:/x", "c:x", "C:\\x", "z:", "C:"]],
  ["UNC paths", ["\\\\server\\share\\x", "//server/share/x", "\\\\?\\C:\\x"]],
  ["backslash traversal", ["a\\..\\..\\x", "..\\x", "a\\b"]],
  ["empty components", ["", "a//b", "a/", "a/b/"]],
  ["Windows reserved names", ["CON", "nul.txt", "a/COM1.log", "x.", "y ", "aux .txt", "lpt9"]],
  ["control characters", [
    "a\u0000b",
    "a\nb",
    "\u001b[2J",
    "a\rb",
    "bell\u0007",
    "del\u007f",
    "c1\u0085",
  ]],
  ["overlong names", [
    "a".repeat(256),
    "é".repeat(128), // 256 UTF-8 bytes in 128 characters
    `${"a".repeat(200)}/`.repeat(20) + "x".repeat(100), // 4120 bytes
    "a/".repeat(128) + "x", // 129 levels
  ]],
  ["the staging folder", [".ferry/x", ".ferry/tmp/x", ".FERRY/x", ".ferry", ".Ferry/tmp"]],
  ["malformed Unicode", ["lone\ud800surrogate", "\udc00"]],
];

for (const [group, names] of HOSTILE_NAMES) {
  Deno.test(`server refuses ${group} per entry and writes nothing outside DIR`, async () => {
    await inArena((arena) => assertNamesRefused(arena, names));
  });
}

Deno.test("server refuses hostile names announced as directories", async () => {
  await inArena(async (arena) => {
    const client = await arena.open();
    const names = ["../up", "/abs", "C:", ".ferry", "a/../..", "CON", "\u001b"];
    const decisions = await announce(client, 0, [
      ...names.map((name, i) => dirEntry(i + 1, name)),
      dirEntry(99, "fine"),
    ]);
    assertEquals(decisions.map((d) => d.action), [...names.map(() => "refuse"), "accept"]);
    await finish(client);
    return ["fine"];
  });
});

// PROTOCOL.md §7.1 (rules 13, 14): a file's parent directories are created when
// it is announced and stay, even when the full name then proves too long for
// the file system. Only the file itself is refused.
Deno.test("server refuses a path too long for its file system, and the session goes on", async () => {
  const parts = Array.from({ length: 16 }, (_, i) => String(i % 10).repeat(255)); // 4095 bytes
  const parents = parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join("/"));
  await inArena((arena) => assertNamesRefused(arena, [parts.join("/")], parents));
});

Deno.test("server refuses, with a reason, a renamed copy whose name would grow too long", async () => {
  await inArena(async (arena) => {
    const client = await arena.open();
    const name = "a".repeat(251) + ".txt"; // 255 bytes; "a… (1).txt" would be 259
    const first = randomBytes(10);
    const decisions = await announce(client, 0, [
      file(1, name, 10),
      file(2, name, 10),
      file(3, "after.txt", 10),
    ]);
    assertEquals(decisions.map((d) => d.action), ["accept", "accept", "accept"]);
    await sendFile(client, 1, first);
    assertEquals(await readAcks(client, 1), [{ id: 1, ok: true, name }]);
    await sendFile(client, 2, randomBytes(10));
    const [ack] = await readAcks(client, 1);
    assertEquals([ack.id, ack.ok], [2, false]);
    assertMatch(ack.reason ?? "", /too long/);
    await sendFile(client, 3, randomBytes(10));
    assertEquals(await readAcks(client, 1), [{ id: 3, ok: true, name: "after.txt" }]);
    await finish(client);
    assertEquals(await Deno.readFile(join(arena.dir, name)), first);
    return [name, "after.txt"];
  });
});

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
      assertEquals(decisions[i].action, "refuse", `size ${JSON.stringify(size)}`);
      assertMatch(decisions[i].reason ?? "", /size/);
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
    assertMatch(decisions[0].reason ?? "", /1000/);
    const exact = randomBytes(1000);
    await sendFile(client, 2, exact);
    assertEquals(await readAcks(client, 1), [{ id: 2, ok: true, name: "exact.bin" }]);
    const tooMuch = randomBytes(1001);
    await sendFile(client, 3, tooMuch);
    const [ack] = await readAcks(client, 1);
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
  flipped[0] ^= 1;
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
      const [ack] = await readAcks(client, 1);
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
    const small = [randomBytes(10), randomBytes(20), randomBytes(30)];
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
    assertEquals((await announce(first, 0, [file(1, "big.bin", data.length)]))[0].offset, 0);
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
    const [decision] = await announce(second, 0, [file(1, "big.bin", data.length)]);
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
    flipped[15] ^= 0x80;
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
    assertEquals((await announce(client, 0, [file(7, "piped.bin", null)]))[0].action, "accept");
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
    assertEquals((await readAcks(client, 1))[0].ok, true);
    await finish(client);
    assertEquals((await Deno.stat(join(arena.dir, "d/suid.bin"))).mode! & 0o7777, 0o755);
    assertEquals((await Deno.stat(join(arena.dir, "d"))).mode! & 0o7777, 0o755);
    assertEquals((await Deno.stat(join(arena.dir, "d/suid.bin"))).mtime?.getTime(), MTIME);
    assertEquals((await Deno.stat(join(arena.dir, "d"))).mtime?.getTime(), MTIME);
    return ["d", "d/suid.bin"];
  });
});

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
// 6. Garbage and protocol violations
// ---------------------------------------------------------------------------

/** Reads raw bytes until the server closes (or resets) the connection. */
async function drainRaw(client: RawClient): Promise<Uint8Array> {
  const chunks: number[] = [];
  const buf = new Uint8Array(64 * 1024);
  try {
    for (;;) {
      const n = await client.conn.read(buf);
      if (n === null) break;
      chunks.push(...buf.subarray(0, n));
    }
  } catch { /* reset: the end too */ }
  return Uint8Array.from(chunks);
}

const NOT_FERRY: [what: string, bytes: Uint8Array][] = [
  ["random bytes", Uint8Array.from([0x00, ...randomBytes(7)])],
  ["an HTTP request", encoder.encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n".slice(0, 8))],
  ["a TLS-looking hello", Uint8Array.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01])],
  ["a lower-case magic", encoder.encode("ferry\x01\x00\x00")],
];

for (const [what, bytes] of NOT_FERRY) {
  Deno.test(`server closes a connection that starts with ${what} instead of the preamble`, async () => {
    await inArena(async (arena) => {
      const client = await arena.connect();
      await client.raw(bytes);
      // No preamble back, no WELCOME: at most ERROR "not-ferry" (PROTOCOL.md §8.3), then close.
      await expectSilentOrError(client, "not-ferry");
      return [];
    });
  });
}

Deno.test("server survives random garbage instead of the preamble and after it", async () => {
  await inArena(async (arena) => {
    for (let i = 0; i < 20; i++) {
      const client = await arena.connect();
      const garbage = randomBytes(1 + (i * 397) % 4096);
      const prefix = i % 2 === 0
        ? encodePreamble({ version: PROTOCOL_VERSION, channel: Channel.plain })
        : new Uint8Array(0);
      await client.raw(Uint8Array.from([...prefix, ...garbage]));
      try {
        client.conn.closeWrite();
      } catch { /* the server already closed */ }
      await drainRaw(client);
      client.close();
    }
    return [];
  });
});

Deno.test("server survives random frames after the handshake", async () => {
  const types = Object.values(FrameType);
  await inArena(async (arena) => {
    for (let i = 0; i < 30; i++) {
      const client = await arena.open();
      const type = types[i % types.length];
      const payload = type === FrameType.DONE ? new Uint8Array(0) : randomBytes(1 + (i * 31) % 77);
      await client.send(type, payload);
      try {
        client.conn.closeWrite();
      } catch { /* the server already closed */ }
      await client.drain();
      client.close();
    }
    return [];
  });
});

Deno.test("server answers an unknown protocol version with its preamble and ERROR 'unsupported-version'", async () => {
  await inArena(async (arena) => {
    const client = await arena.connect();
    await client.raw(encodePreamble({ version: 7, channel: Channel.plain }));
    const preamble = await client.reader.readRaw(8);
    assertEquals(preamble, encodePreamble({ version: PROTOCOL_VERSION, channel: Channel.cpace }));
    const message = await expectError(client, "unsupported-version");
    assertMatch(message, new RegExp(`version ${PROTOCOL_VERSION}\\b`));
    assertMatch(message, /version 7\b/);
    return [];
  });
});

Deno.test("server answers an unknown channel with ERROR 'unsupported-channel'", async () => {
  await inArena(async (arena) => {
    const client = await arena.connect();
    await client.raw(encodePreamble({ version: PROTOCOL_VERSION, channel: 9 }));
    assert(await client.reader.readRaw(8) !== null);
    assertMatch(await expectError(client, "unsupported-channel"), /9/);
    return [];
  });
});

Deno.test("server answers a HELLO without a common digest with ERROR 'no-common-digest'", async () => {
  await inArena(async (arena) => {
    const client = await arena.connect();
    assert(await client.channel());
    await client.json(FrameType.HELLO, { software: "x", digests: ["md5", "crc32"] });
    await expectError(client, "no-common-digest");
    return [];
  });
});

Deno.test("server drops a connection that stays silent past the handshake timeout", async () => {
  await inArena(async (arena) => {
    const client = await arena.connect();
    const started = Date.now();
    await drainRaw(client);
    assert(Date.now() - started < 5_000, "closed by the handshake timeout");
    return [];
  }, { server: { handshakeTimeoutMs: 300 } });
});

Deno.test("server drops a sender that goes quiet mid-file and removes its temp file", async () => {
  await inArena(async (arena) => {
    const client = await arena.open();
    await announce(client, 0, [file(1, "stalled.bin", STREAMED)]);
    await sendData(client, randomBytes(4000));
    await waitForStaged(arena.dir);
    assertEquals(await client.drain(), [], "the server closes without a word");
    await sessionsEnded(arena.srv);
    return [];
  }, { server: { idleTimeoutMs: 300 } });
});

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
      assertEquals((await announce(c, 0, [file(1, "../x", 3)]))[0].action, "refuse");
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
      assertEquals((await announce(c, 0, [file(1, "exists.txt", 3)]))[0].action, "skip");
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
    assertMatch(decisions[1].reason ?? "", /path/);
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
    assertEquals((await announce(client, 1, [file(2, "two.bin", 10)]))[0].action, "accept");
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
      assertEquals((plan.decisions as Decision[])[0].action, "accept");
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

// ---------------------------------------------------------------------------
// 8. Symbolic links inside DIR
// ---------------------------------------------------------------------------

/** DIR/link → BASE/outside, DIR/f.txt → BASE/outside/secret.txt, DIR/dangling → nowhere. */
async function plantLinks({ dir, outside }: { dir: string; outside: string }): Promise<void> {
  await Deno.symlink(outside, join(dir, "link"));
  await Deno.symlink(join(outside, "secret.txt"), join(dir, "f.txt"));
  await Deno.symlink(join(outside, "not-yet"), join(dir, "dangling"));
  await Deno.symlink("../outside", join(dir, "relative"));
  await Deno.mkdir(join(dir, "real"));
  await Deno.symlink(outside, join(dir, "real", "deeper"));
}

const LINKS = ["dangling", "f.txt", "link", "real", "real/deeper", "relative"];

async function assertLinksUntouched(arena: Arena): Promise<void> {
  assertEquals(await Deno.readLink(join(arena.dir, "link")), arena.outside);
  assertEquals(await Deno.readLink(join(arena.dir, "f.txt")), join(arena.outside, "secret.txt"));
  assertEquals(await Deno.readLink(join(arena.dir, "dangling")), join(arena.outside, "not-yet"));
  assertEquals(await Deno.readFile(join(arena.outside, "secret.txt")), SECRET);
}

Deno.test("server refuses names that go through a symbolic link in DIR", async () => {
  await inArena(async (arena) => {
    const names = [
      "link/x.txt",
      "link/sub/y.txt",
      "dangling/x.txt",
      "relative/x.txt",
      "real/deeper/x.txt",
      "f.txt/x",
    ];
    const kept = await assertNamesRefused(arena, names, LINKS);
    await assertLinksUntouched(arena);
    return kept;
  }, { prepare: plantLinks });
});

Deno.test("server refuses directories that are symbolic links in DIR", async () => {
  await inArena(async (arena) => {
    const client = await arena.open();
    const names = ["link", "dangling", "relative/new", "real/deeper"];
    const decisions = await announce(client, 0, names.map((n, i) => dirEntry(i + 1, n)));
    assertEquals(decisions.map((d) => d.action), names.map(() => "refuse"));
    await finish(client);
    await assertLinksUntouched(arena);
    return LINKS;
  }, { prepare: plantLinks });
});

Deno.test("server never writes through a symbolic link named like the file (rename policy)", async () => {
  await inArena(async (arena) => {
    const client = await arena.open();
    const names = ["f.txt", "link", "dangling"];
    const data = names.map(() => randomBytes(64));
    const decisions = await announce(client, 0, names.map((n, i) => file(i + 1, n, 64)));
    assertEquals(decisions.map((d) => d.action), ["accept", "accept", "accept"]);
    for (const [i] of names.entries()) await sendFile(client, i + 1, data[i]);
    const acks = await readAcks(client, names.length);
    assertEquals(acks.map((a) => a.name), ["f (1).txt", "link (1)", "dangling (1)"]);
    await finish(client);
    await assertLinksUntouched(arena);
    assertEquals(await Deno.readFile(join(arena.dir, "f (1).txt")), data[0]);
    assertEquals(await Deno.readFile(join(arena.dir, "link (1)")), data[1]);
    assertEquals(await Deno.readFile(join(arena.dir, "dangling (1)")), data[2]);
    return [...LINKS, "f (1).txt", "link (1)", "dangling (1)"];
  }, { prepare: plantLinks });
});

Deno.test("server replaces a symbolic link, not its target, with the overwrite policy", async () => {
  await inArena(async (arena) => {
    const client = await arena.open();
    const data = randomBytes(64);
    assertEquals((await announce(client, 0, [file(1, "f.txt", 64)]))[0].action, "accept");
    await sendFile(client, 1, data);
    assertEquals(await readAcks(client, 1), [{ id: 1, ok: true, name: "f.txt" }]);
    await finish(client);
    assert((await Deno.lstat(join(arena.dir, "f.txt"))).isFile, "the link itself was replaced");
    assertEquals(await Deno.readFile(join(arena.dir, "f.txt")), data);
    assertEquals(await Deno.readFile(join(arena.outside, "secret.txt")), SECRET);
    return LINKS;
  }, { prepare: plantLinks, server: { onConflict: "overwrite" } });
});

Deno.test("server refuses to overwrite a symbolic link to a directory with a directory in the way", async () => {
  await inArena(async (arena) => {
    const client = await arena.open();
    const decisions = await announce(client, 0, [file(1, "real", 3), file(2, "link", 3)]);
    assertEquals(decisions[0].action, "refuse", "a directory is in the way");
    assertEquals(decisions[1].action, "accept", "a link is replaced, not followed");
    await sendFile(client, 2, encoder.encode("new"));
    assertEquals(await readAcks(client, 1), [{ id: 2, ok: true, name: "link" }]);
    await finish(client);
    assert((await Deno.lstat(join(arena.dir, "link"))).isFile);
    assertEquals(await Deno.readFile(join(arena.outside, "secret.txt")), SECRET);
    return LINKS;
  }, { prepare: plantLinks, server: { onConflict: "overwrite" } });
});

Deno.test("server replaces a hard link to a file outside DIR, not the file, with the overwrite policy", async () => {
  await inArena(async (arena) => {
    const client = await arena.open();
    const data = randomBytes(64);
    assertEquals((await announce(client, 0, [file(1, "hard.txt", 64)]))[0].action, "accept");
    await sendFile(client, 1, data);
    assertEquals(await readAcks(client, 1), [{ id: 1, ok: true, name: "hard.txt" }]);
    await finish(client);
    assertEquals(await Deno.readFile(join(arena.dir, "hard.txt")), data);
    assertEquals(await Deno.readFile(join(arena.outside, "secret.txt")), SECRET);
    return ["hard.txt"];
  }, {
    prepare: ({ dir, outside }) => Deno.link(join(outside, "secret.txt"), join(dir, "hard.txt")),
    server: { onConflict: "overwrite" },
  });
});

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
        await c.send(FrameType.DATA, data[i].subarray(off, off + 2_500));
      }
    }
    await Promise.all(clients.map((c, i) => c.send(FrameType.FILE_END, fileEnd(1, data[i]))));
    const names = await Promise.all(clients.map(async (c) => (await readAcks(c, 1))[0].name!));
    await Promise.all(clients.map((c) => finish(c)));
    const expected = ["same.bin", ...[1, 2, 3, 4].map((n) => `same (${n}).bin`)];
    assertEquals([...names].sort(), [...expected].sort());
    for (const [i, name] of names.entries()) {
      assertEquals(await Deno.readFile(join(arena.dir, name)), data[i], name);
    }
    return expected;
  });
});
