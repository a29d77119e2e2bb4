/**
 * The ack queue (src/server/ack_queue.ts) on its own, with a fake writer and fake folders that
 * log what happens: Acks go out in the order the files ended, and only after each file was
 * placed (its fsync done first) and the folders were fsynced (PROTOCOL.md §5.10, §6.3).
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import { ProtocolError } from "../src/protocol/errors.ts";
import { FrameType, type FrameTypeCode } from "../src/protocol/frame.ts";
import { type Ack, decodeAcks, type Entry } from "../src/protocol/messages.ts";
import type { Accepted } from "../src/server/accepted.ts";
import {
  ACK_FLUSH_COUNT,
  AckQueue,
  type AckWriter,
  type Ending,
  MAX_STAGED,
  type Staged,
} from "../src/server/ack_queue.ts";
import type { Folders } from "../src/server/folders.ts";
import { type ConflictPolicy, Refusal } from "../src/server/inbox.ts";
import { DamagedData } from "../src/server/incoming_file.ts";
import type { ServerEvent } from "../src/server/server_events.ts";
import { Tally } from "../src/server/tally.ts";

/** Everything the fakes saw, in order. */
type Log = string[];

/** Records ACK frames (decoded) and flushes. */
class FakeWriter implements AckWriter {
  acks: Ack[][] = [];
  constructor(readonly log: Log) {}
  frame(type: FrameTypeCode, payload: Uint8Array): Promise<void> {
    assertEquals(type, FrameType.ACK);
    decodeAcks(payload); // a valid ACK message
    const { acks } = JSON.parse(new TextDecoder().decode(payload)) as { acks: Ack[] };
    this.acks.push(acks);
    this.log.push(`ACK ${acks.map((a) => a.id).join(",")}`);
    return Promise.resolve();
  }
  flush(): Promise<void> {
    this.log.push("flush");
    return Promise.resolve();
  }
}

/** Folders that only place (by name, logged; `taken` names are skipped) and fsync. */
function fakeFolders(log: Log, taken = new Set<string>()): Folders {
  let dirty = 0;
  return {
    inbox: null as never,
    ensure: () => Promise.reject(new Error("not used")),
    openFile: () => Promise.reject(new Error("not used")),
    look: () => Promise.reject(new Error("not used")),
    checkStaged: () => {},
    setMetadata: () => Promise.resolve(),
    close: () => {},
    place(_temp: string, _dir: string, name: string, _policy: ConflictPolicy) {
      if (taken.has(name)) return Promise.resolve(null);
      log.push(`place ${name}`);
      dirty++;
      return Promise.resolve(name);
    },
    get dirty() {
      return dirty;
    },
    sync() {
      log.push(`sync ${dirty}`);
      dirty = 0;
      return Promise.resolve();
    },
  };
}

/** A staged small file whose fsync finishes when `synced()` is called (or at once). */
class FakeStaged implements Staged {
  readonly bytes = 10;
  dropped = false;
  #synced: Promise<void>;
  synced: () => void = () => {};

  constructor(readonly log: Log, readonly name: string, syncNow = true) {
    this.#synced = syncNow ? Promise.resolve() : new Promise((resolve) => this.synced = resolve);
  }

  async place(folders: Folders, dir: string, name: string, policy: ConflictPolicy) {
    await this.#synced;
    return await folders.place(`staged/${name}`, dir, name, policy);
  }

  drop(): void {
    this.dropped = true;
    this.log.push(`drop ${this.name}`);
  }
}

function setUp(opts: { taken?: Set<string>; closed?: () => boolean } = {}) {
  const log: Log = [];
  const writer = new FakeWriter(log);
  const events: ServerEvent[] = [];
  const tally = new Tally();
  const acks = new AckQueue({
    session: 1,
    report: (event) => events.push(event),
    writer,
    folders: fakeFolders(log, opts.taken),
    onConflict: "rename",
    tally,
    stopIfClosed: () => {
      if (opts.closed?.()) throw new ProtocolError("truncated", "the session was closed");
    },
  });
  return { log, writer, events, tally, acks };
}

let nextId = 0;
function accepted(name: string, size = 10): Accepted {
  const entry: Entry = { id: nextId++, path: `d/${name}`, kind: "file", size, mtime: 0, mode: 0 };
  return { entry, dir: "/in/d", name, partial: null, offer: null, reserved: 0 };
}
function staged(file: Staged): Ending {
  return { kind: "staged", file };
}
function failed(reason: string): Ending {
  return { kind: "failed", failure: new Refusal(reason) };
}
/** A larger file: `place` logs and places it now. */
function large(log: Log, name: string, failure: Refusal | null = null): Ending {
  return {
    kind: "large",
    place: () => {
      log.push(`place ${name}`);
      return Promise.resolve(
        failure ? { failure, done: null } : { failure, done: { name, bytes: 20, resumed: 5 } },
      );
    },
  };
}

Deno.test("ack queue: nothing is acknowledged before flush; then placed, fsynced, sent", async () => {
  const { acks, log, writer } = setUp();
  const a = accepted("a"), b = accepted("b");
  await acks.ended(a, staged(new FakeStaged(log, "a")));
  await acks.ended(b, staged(new FakeStaged(log, "b")));
  assertEquals(log, []);
  await acks.flush();
  assertEquals(log, ["place a", "place b", "sync 2", `ACK ${a.entry.id},${b.entry.id}`, "flush"]);
  assertEquals(writer.acks[0], [
    { id: a.entry.id, ok: true, name: "d/a" },
    { id: b.entry.id, ok: true, name: "d/b" },
  ]);
});

Deno.test("ack queue: a staged file is placed only once its fsync is done", async () => {
  const { acks, log } = setUp();
  const slow = new FakeStaged(log, "slow", false);
  await acks.ended(accepted("slow"), staged(slow));
  await acks.ended(accepted("quick"), staged(new FakeStaged(log, "quick")));
  const flushing = acks.flush();
  await new Promise((r) => setTimeout(r, 10));
  // The later file waits its turn behind the one still syncing, and no ACK goes out.
  assertEquals(log, []);
  slow.synced();
  await flushing;
  assertEquals(log.slice(0, 3), ["place slow", "place quick", "sync 2"]);
});

Deno.test("ack queue: a larger file is placed after the small files that ended before it", async () => {
  const { acks, log, writer, tally } = setUp();
  const small = accepted("small"), big = accepted("big", 1 << 21), after = accepted("after");
  await acks.ended(small, staged(new FakeStaged(log, "small")));
  await acks.ended(big, large(log, "big"));
  await acks.ended(after, staged(new FakeStaged(log, "after")));
  assertEquals(log, ["place small", "place big"]);
  await acks.flush();
  assertEquals(writer.acks[0]!.map((a) => a.id), [small.entry.id, big.entry.id, after.entry.id]);
  assertEquals([tally.files, tally.bytes, tally.resumedBytes], [3, 40, 5]);
});

Deno.test("ack queue: a failed file keeps its turn among the held ones", async () => {
  const { acks, log, writer, tally, events } = setUp();
  const a = accepted("a"), bad = accepted("bad"), c = accepted("c");
  await acks.ended(a, staged(new FakeStaged(log, "a")));
  await acks.ended(bad, failed("the sender gave up on it: gone"));
  await acks.ended(c, staged(new FakeStaged(log, "c")));
  await acks.flush();
  assertEquals(writer.acks[0], [
    { id: a.entry.id, ok: true, name: "d/a" },
    { id: bad.entry.id, ok: false, reason: "the sender gave up on it: gone" },
    { id: c.entry.id, ok: true, name: "d/c" },
  ]);
  assertEquals(tally.failed, 1);
  assertEquals(events.map((e) => e.type), ["file", "file-failed", "file"]);
});

Deno.test("ack queue: damaged data asks for a resend; a skipped file is no failure", async () => {
  const { acks, log, writer, tally } = setUp({ taken: new Set(["taken"]) });
  const damaged = accepted("damaged"), taken = accepted("taken"), big = accepted("big", 1 << 21);
  await acks.ended(damaged, { kind: "failed", failure: new DamagedData("digest mismatch") });
  await acks.ended(taken, staged(new FakeStaged(log, "taken")));
  await acks.ended(big, large(log, "big", new DamagedData("received 1 bytes")));
  await acks.flush();
  assertEquals(writer.acks[0], [
    { id: damaged.entry.id, ok: false, reason: "digest mismatch", retry: true },
    { id: taken.entry.id, ok: false, skipped: true, reason: "already exists" },
    { id: big.entry.id, ok: false, reason: "received 1 bytes", retry: true },
  ]);
  assertEquals(tally.failed, 2);
  assert(tally.awaitsResend);
});

Deno.test("ack queue: no fsync of folders when nothing was placed, no ACK when none waits", async () => {
  const { acks, log } = setUp();
  await acks.flush();
  assertEquals(log, ["flush"]);
  await acks.ended(accepted("x"), failed("refused"));
  await acks.flush(false);
  assertEquals(log, ["flush", `ACK ${nextId - 1}`]);
});

Deno.test("ack queue: at most MAX_STAGED small files are held before they are placed", async () => {
  const { acks, log } = setUp();
  for (let i = 0; i < MAX_STAGED - 1; i++) {
    // Only held: nothing to wait for, so no promise (the session loop goes on at once).
    assertEquals(acks.ended(accepted(`f${i}`), staged(new FakeStaged(log, `f${i}`))), null);
  }
  assertEquals(log, []);
  const placing = acks.ended(accepted("last"), staged(new FakeStaged(log, "last")));
  assert(placing instanceof Promise);
  await placing;
  assertEquals(log.length, MAX_STAGED);
  assertEquals(log.at(-1), "place last");
});

Deno.test("ack queue: full once ACK_FLUSH_COUNT Acks wait", async () => {
  const { acks } = setUp();
  for (let i = 0; i < ACK_FLUSH_COUNT - 1; i++) await acks.ended(accepted(`f${i}`), failed("no"));
  assert(!acks.full);
  await acks.ended(accepted("last"), failed("no"));
  assert(acks.full);
  await acks.flush();
  assert(!acks.full);
});

Deno.test("ack queue: a session closed from outside places nothing more, sends no ACK and lets go of what it held", async () => {
  let closed = false;
  const { acks, log } = setUp({ closed: () => closed });
  const a = new FakeStaged(log, "a");
  await acks.ended(accepted("a"), staged(a));
  closed = true;
  await assertRejects(() => acks.flush(), ProtocolError, "closed");
  assertEquals(log, ["drop a"]);
  assert(a.dropped);
});

Deno.test("ack queue: placing stopped partway drops every held file not placed", async () => {
  let placed: Log = [];
  const { acks, log } = setUp({ closed: () => placed.includes("place a") });
  placed = log;
  const files = ["a", "b", "c"].map((name) => new FakeStaged(log, name));
  for (const file of files) await acks.ended(accepted(file.name), staged(file));
  await assertRejects(() => acks.flush(), ProtocolError, "closed");
  assertEquals(files.map((f) => f.dropped), [false, true, true]);
  acks.drop(); // the session's release: nothing is dropped twice, nothing is left
  assertEquals(log.filter((l) => l.startsWith("drop")), ["drop b", "drop c"]);
});

Deno.test("ack queue: files held when the session ends are dropped, not placed", async () => {
  const { acks, log } = setUp();
  const a = new FakeStaged(log, "a");
  await acks.ended(accepted("a"), staged(a));
  await acks.ended(accepted("b"), failed("no"));
  acks.drop();
  assert(a.dropped);
  await acks.flush();
  assertEquals(log, ["drop a", "flush"]);
});
