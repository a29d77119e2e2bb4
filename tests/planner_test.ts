/**
 * The planner (src/server/planner.ts) on its own: ANNOUNCE → PLAN against a fake inbox that
 * holds its names, partials and free space in memory, so every decision of PROTOCOL.md §5.5,
 * §6.2, §7 and §9 can be driven without a disk or a sender.
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import { type Digest, loadDigest } from "../src/protocol/digests.ts";
import { ProtocolError } from "../src/protocol/errors.ts";
import type { Decision, Entry } from "../src/protocol/messages.ts";
import { AcceptedQueue, SessionBytes } from "../src/server/accepted.ts";
import {
  type ConflictPolicy,
  type Existing,
  type HeldPartial as PartialSlot,
  Refusal,
} from "../src/server/inbox.ts";
import { type Announced, Planner, type PlannerInbox } from "../src/server/planner.ts";
import { checkName } from "../src/server/safe_path.ts";
import type { ServerEvent } from "../src/server/server_events.ts";
import { DEFAULT_LIMITS, type ServerLimits } from "../src/server/server_limits.ts";
import { SMALL_FILE_MAX } from "../src/server/small_file.ts";
import { Tally } from "../src/server/tally.ts";

const ROOT = "/in";
const BIG = SMALL_FILE_MAX + 1;

/** An inbox in memory: what is at which path, the partials held, the free space. */
class FakeInbox implements PlannerInbox {
  reserved = 0;
  /** Free bytes (null: unknown). */
  free: number | null = null;
  /** What is at each absolute path; anything else is "none". */
  at = new Map<string, Existing>();
  /** Bytes held in a partial, by the entry's path. */
  held = new Map<string, number>();
  claimed = new Set<string>();
  dropped: string[] = [];
  looked: string[] = [];

  parse(name: string, limits: { maxPathBytes: number; maxDepth: number }): string[] {
    const check = checkName(name, { windows: false, ...limits });
    if (!check.ok) throw new Refusal(check.reason);
    return check.parts;
  }

  /** Size and mtime (ms) of a file at a path; 10 bytes at 1_700_000_000_000 if not given. */
  stat = new Map<string, { size: number; mtime: number }>();

  existing(path: string): Existing {
    this.looked.push(path);
    return this.at.get(path) ?? "none";
  }

  lookup(path: string): Deno.FileInfo | null {
    const kind = this.existing(path);
    if (kind === "none") return null;
    const { size, mtime } = this.stat.get(path) ?? { size: 10, mtime: 1_700_000_000_000 };
    return {
      isFile: kind === "file",
      isDirectory: kind === "dir",
      isSymlink: kind === "other",
      size,
      mtime: new Date(mtime),
    } as Deno.FileInfo;
  }

  freeBytes(): Promise<number | null> {
    return Promise.resolve(this.free);
  }

  claimPartial(entry: Entry): PartialSlot | null {
    if (this.claimed.has(entry.path)) return null;
    this.claimed.add(entry.path);
    return { key: entry.path, path: `${ROOT}/.ferry/partial/${entry.path}`, size: 0 };
  }

  releasePartial(partial: PartialSlot): void {
    this.claimed.delete(partial.key);
  }

  readPartial(partial: PartialSlot, digest: Digest, maxSize: number) {
    const size = this.held.get(partial.key);
    if (size === undefined || size > maxSize) return Promise.resolve(null);
    return Promise.resolve({ size, hash: digest.hasher(), prefix: `prefix of ${partial.key}` });
  }

  dropPartial(entry: Entry): Promise<void> {
    this.dropped.push(entry.path);
    return Promise.resolve();
  }
}

interface Setup {
  limits?: Partial<ServerLimits>;
  onConflict?: ConflictPolicy;
  resumable?: boolean;
  sync?: boolean;
  /** What `openFile` gives for a path (the planner reads it to compare a digest). */
  files?: Map<string, Uint8Array>;
}

/** A planner over a fake inbox, with what it fills in and reports. */
/** How often the planners' keepAlive was called. */
let keptAlive = 0;

async function setUp(setup: Setup = {}) {
  const inbox = new FakeInbox();
  const events: ServerEvent[] = [];
  const queue = new AcceptedQueue(inbox);
  const tally = new Tally();
  const limits = { ...DEFAULT_LIMITS, ...setup.limits };
  const ensured: string[][] = [];
  const planner = new Planner({
    session: 1,
    report: (event) => events.push(event),
    inbox,
    openFile: (dir, name) => {
      const data = setup.files?.get(`${dir}/${name}`);
      if (data === undefined) return Promise.resolve(null);
      // One byte a read: the planner keeps the sender's timer alive between reads.
      let at = 0;
      return Promise.resolve({
        read: (buf: Uint8Array) => {
          if (at === data.length) return Promise.resolve(null);
          buf[0] = data[at++]!;
          return Promise.resolve(1);
        },
        close: () => {},
      } as unknown as Deno.FsFile);
    },
    sync: setup.sync ?? false,
    look: (dir, name) => {
      const info = inbox.lookup(`${dir}/${name}`);
      if (info === null) return Promise.resolve(null);
      const kind = info.isFile ? "file" : info.isDirectory ? "dir" : "other";
      return Promise.resolve({ kind, size: info.size, mtimeMs: info.mtime!.getTime() });
    },
    keepAlive: () => {
      keptAlive++;
      return Promise.resolve();
    },
    ensure: (parts) => {
      ensured.push(parts);
      return Promise.resolve([ROOT, ...parts].join("/"));
    },
    limits,
    onConflict: setup.onConflict ?? "rename",
    digest: await loadDigest("sha256"),
    resumable: setup.resumable ?? false,
    resumedSince: null,
    queue,
    bytes: new SessionBytes(limits.maxTotal),
    tally,
  });
  return { planner, inbox, events, queue, tally, ensured };
}

let nextId = 0;
function file(path: string, size: number | null = 10, id = nextId++): Entry {
  return { id, path, kind: "file", size, mtime: 1_700_000_000_000, mode: 0o644 };
}
function dir(path: string, id = nextId++) {
  return { id, path, kind: "dir", mtime: 1_700_000_000_000, mode: 0o755 };
}
function batch(n: number, ...entries: unknown[]): Announced {
  return { batch: n, entries };
}
function actions(decisions: Decision[]): string[] {
  return decisions.map((d) => d.action);
}

Deno.test("planner: accepts files and directories in announce order, and queues them", async () => {
  const { planner, queue, ensured } = await setUp();
  const plan = await planner.plan(batch(0, file("a/x.txt"), file("a/y.txt"), dir("a")));
  assertEquals(plan.batch, 0);
  assertEquals(actions(plan.decisions), ["accept", "accept", "accept"]);
  assertEquals(plan.decisions[0]!.offset, 0);
  assertEquals(ensured, [["a"], ["a"], ["a"]]);
  assertEquals(queue.pending, 3);
  const head = queue.head("DATA");
  assertEquals([head.dir, head.name], [`${ROOT}/a`, "x.txt"]);
});

Deno.test("planner: batches come in order, ids only increase", async () => {
  const { planner } = await setUp();
  await assertRejects(() => planner.plan(batch(1, file("a"))), ProtocolError, "expected batch 0");
  const first = file("a");
  await planner.plan(batch(0, first));
  const again = { ...file("b"), id: first.id };
  const err = await assertRejects(() => planner.plan(batch(1, again)), ProtocolError);
  assertEquals(err.code, "bad-sequence");
});

Deno.test("planner: a batch over the receiver's size, or too far ahead of its data, ends the session", async () => {
  const { planner } = await setUp({ limits: { maxBatchEntries: 2 } });
  const err = await assertRejects(
    () => planner.plan(batch(0, file("a"), file("b"), file("c"))),
    ProtocolError,
  );
  assertEquals(err.code, "too-many-entries");
  // The window: (ANNOUNCE_WINDOW + 1) batches of 2 accepted, no data sent yet.
  const { planner: ahead } = await setUp({ limits: { maxBatchEntries: 2 } });
  for (let n = 0; n < 5; n++) await ahead.plan(batch(n, file(`f${n}a`), file(`f${n}b`)));
  await assertRejects(() => ahead.plan(batch(5, file("g"))), ProtocolError, "ahead of their data");
});

Deno.test("planner: refuses names that are not safe, entries with bad fields, and counts them", async () => {
  const { planner, events, tally, queue } = await setUp();
  const plan = await planner.plan(
    batch(0, file("../up"), file(".ferry/x"), { id: nextId++, path: "n", kind: "file" }),
  );
  assertEquals(actions(plan.decisions), ["refuse", "refuse", "refuse"]);
  assert(plan.decisions.every((d) => typeof d.reason === "string" && d.reason.length > 0));
  assertEquals(tally.failed, 3);
  assertEquals(queue.pending, 0);
  assertEquals(events.map((e) => e.type), ["refused", "refused", "refused"]);
  const first = events[0] as { path: string; reason: string };
  assertEquals(first.path, "../up");
  assert(first.reason.startsWith("refused: "));
});

Deno.test("planner: holds files to --max-size, --max-total and --max-entries", async () => {
  const { planner, queue } = await setUp({
    limits: { maxSize: 100, maxTotal: 150, maxEntries: 4 },
  });
  const plan = await planner.plan(
    batch(0, file("big", 101), file("a", 100), file("b", 60), file("c", 50), file("d", 0)),
  );
  assertEquals(actions(plan.decisions), ["refuse", "accept", "refuse", "accept", "refuse"]);
  assertEquals(plan.decisions[0]!.reason, "larger than the receiver's limit of 100 bytes");
  assertEquals(plan.decisions[2]!.reason, "over the receiver's limit of 150 bytes per session");
  assertEquals(plan.decisions[4]!.reason, "this receiver takes at most 4 entries per session");
  assertEquals(queue.pending, 2);
});

Deno.test("planner: conflict policies decide on a name in use", async () => {
  const cases: [ConflictPolicy, string, string | undefined][] = [
    ["rename", "accept", undefined],
    ["overwrite", "accept", undefined],
    ["skip", "skip", "already exists"],
    ["fail", "refuse", "already exists on the receiver"],
  ];
  for (const [onConflict, action, reason] of cases) {
    const { planner, inbox, tally } = await setUp({ onConflict });
    inbox.at.set(`${ROOT}/taken`, "file");
    const [decision] = (await planner.plan(batch(0, file("taken")))).decisions;
    assertEquals([decision!.action, decision!.reason], [action, reason], onConflict);
    assertEquals(tally.failed, action === "refuse" ? 1 : 0);
    // Under rename a name in use is found when placing: not looked up here.
    assertEquals(inbox.looked.length, onConflict === "rename" ? 0 : 1);
  }
  const { planner, inbox } = await setUp({ onConflict: "overwrite" });
  inbox.at.set(`${ROOT}/d`, "dir");
  const [decision] = (await planner.plan(batch(0, file("d")))).decisions;
  assertEquals(decision!.reason, "a directory is in the way");
});

Deno.test("planner: a file not taken because its name is in use drops its partial", async () => {
  for (const onConflict of ["skip", "fail", "overwrite"] as const) {
    const { planner, inbox } = await setUp({ onConflict, resumable: true });
    inbox.at.set(`${ROOT}/big`, "file");
    inbox.at.set(`${ROOT}/small`, "file");
    await planner.plan(batch(0, file("big", BIG), file("small", 10)));
    // Only a file of several frames has a partial; overwrite takes the file, and its partial.
    assertEquals(inbox.dropped, onConflict === "overwrite" ? [] : ["big"], onConflict);
  }
});

Deno.test("planner: refuses a file the free space cannot take, counting what is reserved", async () => {
  const { planner, inbox, queue } = await setUp();
  inbox.free = 100;
  const plan = await planner.plan(batch(0, file("a", 60), file("b", 60), file("c", 40)));
  assertEquals(actions(plan.decisions), ["accept", "refuse", "accept"]);
  assertEquals(
    plan.decisions[1]!.reason,
    "not enough free space on the receiver (needs 60 bytes, 40 free)",
  );
  assertEquals(inbox.reserved, 100);
  // What a finished file reserved is given back.
  queue.finish(queue.head("FILE_END"));
  assertEquals(inbox.reserved, 40);
  queue.releaseAll();
  assertEquals(inbox.reserved, 0);
});

Deno.test("planner: offers to resume from a partial held, for files of several frames only", async () => {
  const { planner, inbox, queue } = await setUp({ resumable: true });
  inbox.held.set("big", 4096);
  inbox.held.set("small", 5);
  inbox.free = BIG - 4096 + 10;
  const plan = await planner.plan(batch(0, file("big", BIG), file("small", 10), file("new", BIG)));
  const [big, small, fresh] = plan.decisions;
  assertEquals([big!.action, big!.offset, big!.prefix], ["accept", 4096, "prefix of big"]);
  // Only what is not held counts against the free space.
  assertEquals(inbox.reserved, BIG - 4096 + 10);
  assertEquals([small!.action, small!.offset, small!.prefix], ["accept", 0, undefined]);
  assertEquals(fresh!.action, "refuse");
  // The partial slot is claimed while the file is queued, and given back with it.
  assertEquals([...inbox.claimed], ["big"]);
  assertEquals(queue.head("FILE_START").offer?.offset, 4096);
  queue.releaseAll();
  assertEquals([...inbox.claimed], []);
});

Deno.test("planner: no resume offer to a sender without resume", async () => {
  const { planner, inbox } = await setUp({ resumable: false });
  inbox.held.set("big", 4096);
  const [decision] = (await planner.plan(batch(0, file("big", BIG)))).decisions;
  assertEquals([decision!.offset, decision!.prefix], [0, undefined]);
  assertEquals(inbox.claimed.size, 0);
});

Deno.test("planner: reports the sender's totals when they change", async () => {
  const { planner, events } = await setUp();
  const totals = { files: 3, bytes: 30 };
  await planner.plan({ ...batch(0, file("a")), totals });
  await planner.plan({ ...batch(1, file("b")), totals });
  await planner.plan({ ...batch(2, file("c")), totals: { files: 3, bytes: null } });
  assertEquals(events.filter((e) => e.type === "totals"), [
    { type: "totals", session: 1, files: 3, bytes: 30 },
    { type: "totals", session: 1, files: 3, bytes: null },
  ]);
});

Deno.test("planner: a damaged file announced again stops counting as failed", async () => {
  const { planner, tally } = await setUp();
  const damaged = file("again", 10);
  tally.fail(damaged);
  tally.fail();
  assertEquals(tally.failed, 2);
  await planner.plan(batch(0, { ...damaged, id: nextId++ }, file("other", 10)));
  assertEquals(tally.failed, 1);
  await planner.plan(batch(1, { ...damaged, id: nextId++ }));
  assertEquals(tally.failed, 1);
});

Deno.test("planner: in a resumed transfer, a file it stored already is `have`", async () => {
  const root = await Deno.makeTempDir();
  try {
    const mtime = 1_700_000_000_000;
    await Deno.writeFile(`${root}/kept.txt`, new Uint8Array(10));
    await Deno.writeFile(`${root}/other.txt`, new Uint8Array(11));
    await Deno.utime(`${root}/kept.txt`, new Date(mtime), new Date(mtime));
    for (const resumedSince of [{ since: 0, born: null }, null]) {
      const inbox = new FakeInbox();
      inbox.at.set(`${root}/kept.txt`, "file");
      inbox.at.set(`${root}/other.txt`, "file");
      const events: ServerEvent[] = [];
      const tally = new Tally();
      const planner = new Planner({
        session: 1,
        report: (event) => events.push(event),
        inbox,
        ensure: (parts) => Promise.resolve([root, ...parts].join("/")),
        openFile: () => Promise.resolve(null),
        look: () => Promise.resolve(null),
        limits: DEFAULT_LIMITS,
        onConflict: "rename",
        digest: await loadDigest("sha256"),
        resumable: true,
        resumedSince,
        queue: new AcceptedQueue(inbox),
        bytes: new SessionBytes(DEFAULT_LIMITS.maxTotal),
        tally,
      });
      const plan = await planner.plan(
        batch(0, { ...file("kept.txt", 10), mtime }, { ...file("other.txt", 10), mtime }),
      );
      // A new transfer under rename takes both: a name in use is renamed when placing.
      const expected = resumedSince === null ? ["accept", "accept"] : ["have", "accept"];
      assertEquals(actions(plan.decisions), expected);
      assertEquals(tally.already, resumedSince === null ? 0 : 1);
      if (resumedSince !== null) {
        assertEquals(events.find((e) => e.type === "already"), {
          type: "already",
          session: 1,
          path: "kept.txt",
          name: "kept.txt",
          bytes: 10,
        });
      }
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("planner: update leaves the same file (size and mtime) as it is, replaces any other", async () => {
  const { planner, inbox, queue, events, tally } = await setUp({
    onConflict: "update",
    sync: true,
  });
  for (const name of ["same", "size", "time", "link", "folder"]) {
    inbox.at.set(`${ROOT}/${name}`, name === "link" ? "other" : name === "folder" ? "dir" : "file");
  }
  inbox.stat.set(`${ROOT}/size`, { size: 11, mtime: 1_700_000_000_000 });
  inbox.stat.set(`${ROOT}/time`, { size: 10, mtime: 1_700_000_000_001 });
  const plan = await planner.plan(
    batch(0, file("same"), file("size"), file("time"), file("link"), file("folder"), file("new")),
  );
  assertEquals(actions(plan.decisions), ["skip", "accept", "accept", "accept", "refuse", "accept"]);
  assertEquals(plan.decisions[0]!.unchanged, true);
  assertEquals(plan.decisions[0]!.reason, "unchanged");
  assertEquals(plan.decisions[4]!.reason, "a directory is in the way");
  // What each accepted file replaces: a file or a link there, not a new name.
  const replaces: [string, boolean][] = [];
  while (queue.pending > 0) {
    const item = queue.head("DATA");
    replaces.push([item.name, item.replaces === true]);
    queue.finish(item);
  }
  assertEquals(replaces, [["size", true], ["time", true], ["link", true], ["new", false]]);
  assertEquals(tally.unchanged, 1);
  assertEquals(events.filter((e) => e.type === "unchanged").length, 1);
  assertEquals(events.filter((e) => e.type === "refused").length, 1, "unchanged is not a skip");
});

Deno.test("planner: update compares content when the entry has a digest; a streamed file never is the same", async () => {
  const sha = await loadDigest("sha256");
  const hex = (data: Uint8Array) =>
    Array.from(sha.of(data), (b) => b.toString(16).padStart(2, "0")).join("");
  const ten = new TextEncoder().encode("0123456789");
  const other = new TextEncoder().encode("9876543210");
  const files = new Map([[`${ROOT}/same`, ten], [`${ROOT}/differs`, other]]);
  const { planner, inbox } = await setUp({ onConflict: "update", sync: true, files });
  for (const name of ["same", "differs", "short", "streamed"]) {
    inbox.at.set(`${ROOT}/${name}`, "file");
  }
  const plan = await planner.plan(batch(
    0,
    { ...file("same"), digest: hex(ten) },
    { ...file("differs"), digest: hex(ten) },
    { ...file("short"), digest: "ab" },
    file("streamed", null),
  ));
  assertEquals(actions(plan.decisions), ["skip", "accept", "refuse", "accept"]);
  assertEquals(plan.decisions[0]!.unchanged, true);
  assertEquals(plan.decisions[2]!.reason, "its digest is not a sha256 digest, the session's");
  assertEquals(keptAlive >= 20, true, `kept alive ${keptAlive} times for 20 reads`);
  // From a sender without the sync feature a digest does not count: size and mtime decide, and
  // the skip says why in words only.
  const old = await setUp({ onConflict: "update", files });
  old.inbox.at.set(`${ROOT}/differs`, "file");
  const quick = await old.planner.plan(batch(0, { ...file("differs"), digest: hex(ten) }));
  assertEquals(actions(quick.decisions), ["skip"]);
  assertEquals(quick.decisions[0]!.unchanged, undefined);
  assertEquals(quick.decisions[0]!.reason, "unchanged");
});
