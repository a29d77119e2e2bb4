/**
 * The arena of the adversarial tests of the receiver (adversarial_*_test.ts),
 * and the raw-protocol helpers they share.
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
import { assert, assertEquals } from "@std/assert";
import { join } from "node:path";
import { send, type SendEvent } from "../src/client/send_session.ts";
import { resolveSources } from "../src/client/walk.ts";
import { encodeFileEnd, type FileEnd, FrameType } from "../src/protocol/frame.ts";
import type { Ack, Decision } from "../src/protocol/messages.ts";
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

export const SECRET = new TextEncoder().encode("the secret outside DIR\n");
export const MTIME = 1_700_000_000_000;

export interface Arena {
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
export interface Settings {
  onConflict?: ConflictPolicy;
  maxSize?: number;
  handshakeTimeoutMs?: number;
  idleTimeoutMs?: number;
}

export type StartOptions = NonNullable<Parameters<typeof startServer>[1]>;

/**
 * `settings` as startServer() options. The limits are given both flat and
 * under `limits`, so these tests run whichever form the server takes.
 */
export function startOptions({ onConflict, ...limits }: Settings = {}): StartOptions {
  return { ...(onConflict ? { onConflict } : {}), ...limits, limits } as StartOptions;
}

export interface ArenaOptions {
  server?: Settings | undefined;
  /** Runs before the server starts and before BASE is snapshotted. */
  prepare?: (paths: { dir: string; outside: string }) => Promise<void>;
}

/**
 * Runs `attack` against a fresh server, then checks the invariants listed at
 * the top of this file (_arena.ts). `attack` returns the names DIR must hold afterwards.
 */
export async function inArena(
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
export function outsideOf(tree: Record<string, TreeEntry>): Record<string, TreeEntry> {
  return Object.fromEntries(
    Object.entries(tree).filter(([path]) => path !== "inbox" && !path.startsWith("inbox/")),
  );
}

/**
 * A size over SMALL_FILE_MAX: such a file is staged on disk as its data
 * arrives (smaller ones are held in memory until verified), so these tests
 * can watch its temp file appear and be removed.
 */
export const STREAMED = SMALL_FILE_MAX + 1000;

/** Names in DIR/.ferry/tmp, where partial files are staged. */
export async function stagedFiles(dir: string): Promise<string[]> {
  const names = [];
  for await (const e of Deno.readDir(join(dir, ".ferry", "tmp"))) names.push(e.name);
  return names.sort();
}

/** Waits until every session the server started has ended. */
export async function sessionsEnded(srv: TestServer): Promise<void> {
  const count = (type: string) => srv.events.filter((e) => e.type === type).length;
  await waitFor(
    "every session to end",
    () => count("session-end") === count("session-start"),
    10_000,
  );
}

/** A good client (the real sender) sends a small file; it must arrive byte-exact. */
export async function assertStillServes(port: number, dir: string): Promise<void> {
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

export const encoder = new TextEncoder();

export interface Json {
  [key: string]: unknown;
}

/** An announced file entry; `fields` overrides any field, even with nonsense. */
export function file(id: number, path: string, size: unknown, fields: Json = {}): Json {
  return { id, path, kind: "file", size, mtime: MTIME, mode: 0o644, ...fields };
}

export function dirEntry(id: number, path: string, fields: Json = {}): Json {
  return { id, path, kind: "dir", size: null, mtime: MTIME, mode: 0o755, ...fields };
}

/** A FILE_END payload for `data`; `lie` overrides the length or digest. */
export function fileEnd(id: number, data: Uint8Array, lie: Partial<FileEnd> = {}): Uint8Array {
  return encodeFileEnd({ id, length: data.length, digest: sha256(data), ...lie });
}

/** A frame with any header, even one that lies about its length. */
export function frameBytes(
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
export function present<T>(value: T | null | undefined, message: string): T {
  if (value === null || value === undefined) throw new Error(message);
  return value;
}

/** The next frame, which must be of `type`. */
export async function expectFrame(client: RawClient, type: number): Promise<Json> {
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
export async function announce(
  client: RawClient,
  batch: number,
  entries: Json[],
): Promise<Decision[]> {
  await client.json(FrameType.ANNOUNCE, { batch, entries });
  const plan = await expectFrame(client, FrameType.PLAN);
  assertEquals(plan.batch, batch);
  const decisions = plan.decisions as Decision[];
  assertEquals(decisions.map((d) => d.id), entries.map((e) => e.id));
  return decisions;
}

/** Sends `data` as DATA frames (no FILE_END). */
export async function sendData(
  client: RawClient,
  data: Uint8Array,
  chunk = 64 * 1024,
): Promise<void> {
  for (let i = 0; i < data.length; i += chunk) {
    await client.send(FrameType.DATA, data.subarray(i, i + chunk));
  }
}

/** Sends `data` and a FILE_END (honest unless `lie` says otherwise). */
export async function sendFile(
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
export async function readAcks(client: RawClient, n: number): Promise<Ack[]> {
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
export async function finish(
  client: RawClient,
): Promise<{ files: unknown; bytes: unknown; failed: unknown }> {
  await client.send(FrameType.DONE, new Uint8Array(0));
  const bye = await expectFrame(client, FrameType.BYE);
  assertEquals(await client.next(), null, "the server closes after BYE");
  return { files: bye.files, bytes: bye.bytes, failed: bye.failed };
}

/** Reads until the server closes; the last frame must be an ERROR with `code`. Returns its message. */
export async function expectError(client: RawClient, code: string): Promise<string> {
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
export async function expectSilentOrError(client: RawClient, code: string): Promise<void> {
  const frames = await client.drain();
  assert(frames.length <= 1, `at most one frame: ${JSON.stringify(frames)}`);
  for (const f of frames) {
    assertEquals([f.type, (f.json as Json)?.code], [FrameType.ERROR, code]);
  }
}

/** Waits until the session has staged a partial file. */
export async function waitForStaged(dir: string, n = 1): Promise<void> {
  await waitFor("the staged files", async () => (await stagedFiles(dir)).length === n);
}

export function hasControlCharacter(s: string): boolean {
  return [...s].some((c) =>
    c.charCodeAt(0) <= 0x1f || (c.charCodeAt(0) >= 0x7f && c.charCodeAt(0) <= 0x9f)
  );
}

/**
 * Announces each hostile name as a file, in one batch, followed by "ok.txt";
 * every hostile name must be refused with a reason, "ok.txt" accepted and
 * stored. Returns DIR's expected content, plus `keep`.
 */
export async function assertNamesRefused(
  arena: Arena,
  names: string[],
  keep: string[] = [],
): Promise<string[]> {
  const client = await arena.open();
  const entries = names.map((name, i) => file(i + 1, name, 3));
  const okId = names.length + 1;
  const decisions = await announce(client, 0, [...entries, file(okId, "ok.txt", 3)]);
  for (const [i, name] of names.entries()) {
    const d = decisions[i]!; // announce() checked one decision per entry
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

/** Reads raw bytes until the server closes (or resets) the connection. */
export async function drainRaw(client: RawClient): Promise<Uint8Array> {
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
