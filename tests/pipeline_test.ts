/**
 * The sender's transfer phase alone (src/client/pipeline.ts), against a
 * scripted receiver: what each decision and each Ack does, the resend of a
 * damaged file, and the plans it refuses.
 */
import { assertEquals, assertRejects } from "@std/assert";
import { Pipeline } from "../src/client/pipeline.ts";
import { type Deferred, deferred } from "../src/client/reply_reader.ts";
import { type Numbered, Outcomes, type SendEvent } from "../src/client/send_types.ts";
import { type LocalEntry, resolveSources, walk, type WalkItem } from "../src/client/walk.ts";
import { ProtocolError } from "../src/protocol/errors.ts";
import type { FrameTypeCode } from "../src/protocol/frame.ts";
import type { Ack, Decision, Entry, Plan, Totals } from "../src/protocol/messages.ts";
import { tempDir } from "./_temp_dir.ts";

interface Script {
  /** The receiver's decision on an announced entry (default: accept). */
  decide?: (entry: Entry) => Omit<Decision, "id">;
  /** The receiver's Ack of a file sent (default: ok); null sends none. */
  ack?: (entry: Numbered, tries: number) => Omit<Ack, "id"> | null;
  /** Rewrites a plan before it is handed over. */
  tamper?: (plan: Plan) => Plan;
  resume?: boolean;
  /** Acks arrive while a flush is still waiting (a fast receiver), not after it. */
  ackDuringFlush?: boolean;
}

/** A receiver played by hand: plans answer ANNOUNCEs, Acks come after each flush. */
function receiver(script: Script = {}) {
  const plans = new Map<number, Deferred<Plan>>();
  const announced: { batch: number; entries: Entry[]; totals?: Totals }[] = [];
  const sent: { id: number; path: string; offset: number; prefix?: string | undefined }[] = [];
  const tries = new Map<string, number>();
  let pending: Ack[] = [];
  let ackSignal = deferred<void>();
  let stopped = false;
  const events: SendEvent[] = [];
  const outcomes = new Outcomes((e) => events.push(e));
  const writer = {
    frame(_type: FrameTypeCode, payload: Uint8Array) {
      const announce = JSON.parse(new TextDecoder().decode(payload));
      announced.push(announce);
      const decisions = announce.entries.map((e: Entry) => ({
        id: e.id,
        ...(script.decide?.(e) ?? { action: "accept" }),
      }));
      const plan = { batch: announce.batch, decisions };
      plans.get(announce.batch)!.resolve(script.tamper?.(plan) ?? plan);
      return Promise.resolve();
    },
    flush() {
      if (stopped) return Promise.reject(new Error("the connection is closed"));
      const deliver = () => {
        const acks = pending;
        pending = [];
        for (const ack of acks) pipeline.acknowledged(ack);
        ackSignal.resolve();
        ackSignal = deferred();
      };
      if (!script.ackDuringFlush) {
        setTimeout(deliver);
        return Promise.resolve();
      }
      return new Promise<void>((resolve) => {
        deliver();
        setTimeout(resolve);
      });
    },
  };
  const replies = {
    expect(batch: number) {
      const waiting = deferred<Plan>();
      plans.set(batch, waiting);
      return waiting.promise;
    },
    nextAck: () => ackSignal.promise,
  };
  const files = {
    send(entry: Numbered, offset: number, prefix: string | undefined) {
      sent.push({ id: entry.id, path: entry.path, offset, prefix });
      if (offset > 0) entry.resumed = offset; // as the file sender does when the prefix matches
      const n = (tries.get(entry.path) ?? 0) + 1;
      tries.set(entry.path, n);
      const ack = script.ack ? script.ack(entry, n) : { ok: true };
      if (ack !== null) pending.push({ id: entry.id, ...ack });
      return Promise.resolve();
    },
  };
  const pipeline: Pipeline = new Pipeline(writer, replies, files, outcomes, {
    limits: { maxBatchEntries: 2, maxFrame: 1 << 20 },
    resume: script.resume ?? false,
  });
  /** The connection closes: the next flush fails. */
  const stop = () => stopped = true;
  return { pipeline, announced, sent, events, tally: outcomes.tally, stop };
}

function file(path: string, size = 10): LocalEntry {
  return { path, source: `/src/${path}`, kind: "file", size, mtime: 1, mode: 0o644 };
}

async function* walkOf(...items: WalkItem[]): AsyncGenerator<WalkItem> {
  yield* items;
}

function entries(...paths: string[]): WalkItem[] {
  return paths.map((path) => ({ type: "entry", entry: file(path) }));
}

Deno.test("pipeline: each decision's outcome, and data only for accepted files", async () => {
  const decisions: Record<string, Omit<Decision, "id">> = {
    "have.txt": { action: "have" },
    "skip.txt": { action: "skip", reason: "exists" },
    "refuse.txt": { action: "refuse" },
  };
  const r = receiver({ decide: (e) => decisions[e.path] ?? { action: "accept" } });
  await r.pipeline.run(walkOf(
    ...entries("have.txt", "skip.txt", "refuse.txt", "a.txt"),
    { type: "entry", entry: { ...file("dir"), kind: "dir", size: null } },
    { type: "skipped", path: "link", reason: "symbolic link, not followed" },
    { type: "error", path: "locked", reason: "permission denied" },
  ));
  assertEquals(r.sent.map((s) => s.path), ["a.txt"]);
  assertEquals(r.events, [
    { type: "already", path: "have.txt", bytes: 10 },
    { type: "skipped", path: "skip.txt", reason: "skipped by the receiver: exists" },
    { type: "skipped", path: "link", reason: "symbolic link, not followed" },
    { type: "file-failed", path: "locked", reason: "permission denied" },
    { type: "file-failed", path: "refuse.txt", reason: "refused by the receiver: no reason given" },
    { type: "file-done", path: "a.txt", name: "a.txt", bytes: 10, resumed: 0, replaced: false },
  ]);
  assertEquals(
    { ...r.tally, seconds: 0 },
    {
      files: 1,
      bytes: 10,
      resumedBytes: 0,
      already: 1,
      updated: 0,
      unchanged: 0,
      skipped: 2,
      failed: 2,
      seconds: 0,
      texts: 0,
    },
  );
  assertEquals([...r.pipeline.unacknowledged], []);
  // Ids increase over the session; batches of maxBatchEntries (2); the walk's totals once it ended.
  assertEquals(r.announced.map((a) => a.entries.map((e) => e.id)), [[0, 1], [2, 3], [4]]);
  assertEquals(r.announced.map((a) => a.totals ?? null), [null, null, { files: 4, bytes: 40 }]);
});

Deno.test("pipeline: a file that arrived damaged goes once more, with a new id, at the end", async () => {
  const r = receiver({
    ack: (e, tries) =>
      e.path === "bad.txt" && tries === 1
        ? { ok: false, retry: true, reason: "digest mismatch" }
        : e.path === "twice.txt"
        ? { ok: false, retry: true, reason: "digest mismatch" }
        : { ok: true, name: `${e.path}~` },
  });
  await r.pipeline.run(walkOf(...entries("bad.txt", "twice.txt", "good.txt")));
  assertEquals(r.sent.map((s) => [s.id, s.path]), [
    [0, "bad.txt"],
    [1, "twice.txt"],
    [2, "good.txt"],
    [3, "bad.txt"],
    [4, "twice.txt"],
  ]);
  assertEquals(r.events.filter((e) => e.type === "warning").length, 2);
  assertEquals(r.events.filter((e) => e.type !== "warning"), [
    {
      type: "file-done",
      path: "good.txt",
      name: "good.txt~",
      bytes: 10,
      resumed: 0,
      replaced: false,
    },
    {
      type: "file-done",
      path: "bad.txt",
      name: "bad.txt~",
      bytes: 10,
      resumed: 0,
      replaced: false,
    },
    { type: "file-failed", path: "twice.txt", reason: "digest mismatch" },
  ]);
  assertEquals([r.tally.files, r.tally.failed], [2, 1]);
});

Deno.test("pipeline: an Ack that skips counts as skipped, one that fails as failed", async () => {
  const r = receiver({
    ack: (e) =>
      e.path === "s.txt" ? { ok: false, skipped: true } : { ok: false, reason: "disk full" },
  });
  await r.pipeline.run(walkOf(...entries("s.txt", "f.txt")));
  assertEquals(r.events, [
    { type: "skipped", path: "s.txt", reason: "skipped by the receiver: already exists" },
    { type: "file-failed", path: "f.txt", reason: "disk full" },
  ]);
});

Deno.test("pipeline: a resumed file counts only the bytes sent", async () => {
  const r = receiver({
    resume: true,
    decide: () => ({ action: "accept", offset: 60, prefix: "ab" }),
  });
  await r.pipeline.run(walkOf({ type: "entry", entry: file("r.bin", 100) }));
  assertEquals(r.sent, [{ id: 0, path: "r.bin", offset: 60, prefix: "ab" }]);
  assertEquals(r.events, [{
    type: "file-done",
    path: "r.bin",
    name: "r.bin",
    bytes: 40,
    resumed: 60,
    replaced: false,
  }]);
  assertEquals([r.tally.bytes, r.tally.resumedBytes], [40, 60]);
});

Deno.test("pipeline: plans that cannot be are protocol errors", async () => {
  const cases: [Script, string][] = [
    [{ decide: () => ({ action: "accept", offset: 5, prefix: "ab" }) }, "cannot be"],
    [
      { resume: true, decide: () => ({ action: "accept", offset: 11, prefix: "ab" }) },
      "cannot be",
    ],
    [{ tamper: (p) => ({ ...p, decisions: p.decisions.slice(1) }) }, "does not match its batch"],
    [{ tamper: (p) => ({ ...p, decisions: p.decisions.reverse() }) }, "is out of order"],
  ];
  for (const [script, words] of cases) {
    const r = receiver(script);
    const err = await assertRejects(
      () => r.pipeline.run(walkOf(...entries("a.txt", "b.txt"))),
      ProtocolError,
    );
    assertEquals(err.code, "bad-message");
    assertEquals(err.message.endsWith(words), true, err.message);
  }
});

Deno.test("pipeline: an Ack for a file not sent is a protocol error", () => {
  const r = receiver();
  const err = (() => {
    try {
      r.pipeline.acknowledged({ id: 4, ok: true });
    } catch (err) {
      return err;
    }
  })();
  assertEquals(err instanceof ProtocolError && [err.code, err.message], [
    "bad-sequence",
    "ACK for unknown id 4",
  ]);
});

Deno.test("pipeline: files never acknowledged are left for the session to report", async () => {
  const r = receiver({ ack: (e) => (e.path === "lost.txt" ? null : { ok: true }) });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stalled = new Promise<"stalled">((resolve) =>
    timer = setTimeout(() => resolve("stalled"), 100)
  );
  const running = r.pipeline.run(walkOf(...entries("ok.txt", "lost.txt")));
  assertEquals(await Promise.race([running, stalled]), "stalled");
  clearTimeout(timer);
  assertEquals([...r.pipeline.unacknowledged].map((e) => e.path), ["lost.txt"]);
  r.stop();
  await assertRejects(() => running, Error, "the connection is closed");
});

/** How many file descriptors this process has open, where /proc says (Linux); else null. */
function openDescriptors(): number | null {
  try {
    return [...Deno.readDirSync("/proc/self/fd")].length;
  } catch {
    return null;
  }
}

Deno.test("pipeline: a session that ends mid-walk closes the folders the walk holds open", async () => {
  await using dir = await tempDir();
  // Six folders deep, each with files, so the walk holds a folder open at each level.
  let folder = dir.join("tree");
  for (let depth = 0; depth < 6; depth++) {
    folder = `${folder}/d${depth}`;
    await Deno.mkdir(folder, { recursive: true });
    for (let i = 0; i < 3; i++) await Deno.writeTextFile(`${folder}/f${i}.txt`, "x");
  }
  const before = openDescriptors();
  let announced = 0;
  const r = receiver({
    decide: () => {
      // The connection drops while the walk is deep in the tree.
      if (++announced === 12) r.stop();
      return { action: "accept" };
    },
  });
  const items = walk(await resolveSources([dir.join("tree")], "stdin"));
  let returned = 0;
  const close = items.return.bind(items);
  items.return = () => {
    returned++;
    return close();
  };
  await assertRejects(() => r.pipeline.run(items), Error, "the connection is closed");
  assertEquals(returned, 1);
  if (before !== null) assertEquals(openDescriptors(), before);
});

Deno.test("pipeline: the last Ack, read while a flush still waits, ends the wait for Acks", async () => {
  const r = receiver({ ackDuringFlush: true });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stalled = new Promise<"stalled">((resolve) =>
    timer = setTimeout(() => resolve("stalled"), 2000)
  );
  const running = r.pipeline.run(walkOf(...entries("a.txt", "b.txt", "c.txt")));
  try {
    assertEquals(await Promise.race([running.then(() => "done" as const), stalled]), "done");
  } finally {
    clearTimeout(timer);
    r.stop();
  }
  assertEquals(r.tally.files, 3);
});
