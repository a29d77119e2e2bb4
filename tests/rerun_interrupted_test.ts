/**
 * Rerunning an interrupted `ferry send` delivers what the first run was asked to deliver,
 * whatever the receiving folder held before, and leaves no partial behind (PROTOCOL.md §7).
 * Through the real CLI: `ferry serve` is stopped with SIGTERM while a large file is half
 * received (a stalled link, tests/fault_proxy.ts), started again on the same folder and port,
 * and the same `ferry send` is run again.
 */
import {
  assert,
  assertEquals,
  assertGreater,
  assertNotEquals,
  assertStringIncludes,
} from "@std/assert";
import { createHash } from "node:crypto";
import { join } from "node:path";
import type { ConflictPolicy } from "../src/server/inbox.ts";
import { FaultProxy } from "./fault_proxy.ts";
import {
  type CliResult,
  freePort,
  randomBytes,
  runCli,
  type ServeProcess,
  spawnServe,
  tempDir,
  waitFor,
} from "./_harness.ts";

/** A large file: several DATA frames, so the receiver keeps a partial of it. */
const SIZE = 12_000_000;
/** The link stalls here, mid-file, until serve has been stopped (unless a scenario says). */
const STALL_AT = 4_000_000;
/** An old modification time, as a copy made earlier keeps it. */
const MTIME = new Date("2024-03-01T12:00:00Z");
/** An older one, of an older version of a file. */
const OLDER = new Date("2023-01-01T00:00:00Z");

/** `ferry serve DIR` on 127.0.0.1:`port`, up once it says it is listening. */
function serve(dir: string, port: number, policy: ConflictPolicy): Promise<ServeProcess> {
  return spawnServe(dir, ["--on-conflict", policy, "--no-discovery"], { port, startMs: 20_000 });
}

/** `ferry send ARGS...`, to its end. */
function send(args: string[]): Promise<CliResult> {
  return runCli(["send", ...args]);
}

/** SHA-256 of the file at `path`, in hex. */
function sha256(path: string): string {
  return createHash("sha256").update(Deno.readFileSync(path)).digest("hex");
}

/** The partial files in DIR/.ferry/partial and the bytes they hold. */
function partials(dir: string): { count: number; bytes: number } {
  let count = 0;
  let bytes = 0;
  try {
    for (const e of Deno.readDirSync(join(dir, ".ferry/partial"))) {
      count++;
      bytes += Deno.statSync(join(dir, ".ferry/partial", e.name)).size;
    }
  } catch { /* none yet */ }
  return { count, bytes };
}

/** The names in DIR (not its staging folder), sorted. */
function names(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n !== ".ferry").sort();
}

/** A file of `size` random bytes with the old modification time (or `mtime`). */
async function makeFile(path: string, size: number, mtime = MTIME): Promise<void> {
  await Deno.writeFile(path, randomBytes(size));
  await Deno.utime(path, mtime, mtime);
}

/** An unchanged copy of `from` (same content, same modification time), made before any transfer. */
async function copyUnchanged(from: string, to: string): Promise<void> {
  await Deno.copyFile(from, to);
  await Deno.utime(to, MTIME, MTIME);
}

interface Scenario {
  /** The policy of the first serve, cut mid-file. */
  first: ConflictPolicy;
  /** The policy of the serve started again on the same folder and port. */
  then: ConflictPolicy;
  /** Names of the sources (in src/) sent, in order; each is SIZE bytes unless `sizes` says. */
  sources: string[];
  sizes?: Record<string, number>;
  /** Copies of c.bin that DIR holds before the first run. */
  copies: string[];
  /** The copies are an older version (other content, same size, an older time), not equal. */
  stale?: boolean;
  /** Where the link stalls (default STALL_AT). */
  stallAt?: number;
  /** What DIR must show before serve is stopped, besides the partial (`before`: see Ran). */
  ready?: (dir: string, before: Ran["before"]) => boolean;
}

interface Ran {
  base: string;
  src: string;
  dir: string;
  rerun: CliResult;
  /** Inode and SHA-256 of each copy DIR held, before the first run. */
  before: Map<string, { ino: number | null; sha: string }>;
}

/**
 * Runs a scenario: DIR holds `copies` of src/c.bin; `ferry send` of `sources` is cut by a
 * SIGTERM to serve mid-file (a partial of more than 1 MiB is kept), serve is started again
 * on the same DIR and port, and the same command runs again, through the same proxy. All of
 * it in `base`.
 */
async function run(base: string, s: Scenario): Promise<Ran> {
  const src = join(base, "src");
  const dir = join(base, "inbox");
  await Deno.mkdir(src);
  await Deno.mkdir(dir);
  for (const name of s.sources) await makeFile(join(src, name), s.sizes?.[name] ?? SIZE);
  const before = new Map<string, { ino: number | null; sha: string }>();
  for (const copy of s.copies) {
    if (s.stale) await makeFile(join(dir, copy), s.sizes?.["c.bin"] ?? SIZE, OLDER);
    else await copyUnchanged(join(src, "c.bin"), join(dir, copy));
    before.set(copy, { ino: Deno.statSync(join(dir, copy)).ino, sha: sha256(join(dir, copy)) });
  }
  const port = freePort();
  const stallAt = s.stallAt ?? STALL_AT;
  const proxy = new FaultProxy(port, (n) => n === 1 ? { stallAfter: stallAt } : {});
  const args = [
    ...s.sources.map((name) => join(src, name)),
    "--to",
    `127.0.0.1:${proxy.port}`,
    "--retries",
    "0",
  ];
  try {
    const first = await serve(dir, port, s.first);
    let stopped: CliResult;
    let cut: CliResult;
    try {
      const sending = send(args);
      await waitFor("the link to stall", () => proxy.forwarded >= stallAt);
      // More than one DATA frame of the file in progress has been received and written.
      await waitFor(
        "a partial",
        () => partials(dir).bytes > 1_100_000 && (s.ready?.(dir, before) ?? true),
      );
      stopped = await first.stop();
      proxy.release();
      cut = await sending;
    } finally {
      await first.stop();
    }
    assertEquals(stopped.code, 0, stopped.stderr);
    assertEquals(cut.code, 1, `the first run was not cut:\n${cut.stdout}${cut.stderr}`);
    assertEquals(partials(dir).count, 1, "the cut run left its partial");
    const again = await serve(dir, port, s.then);
    let rerun: CliResult;
    try {
      rerun = await send(args);
    } finally {
      await again.stop();
    }
    return { base, src, dir, rerun, before };
  } finally {
    await proxy.close();
  }
}

/** Every copy DIR held before is still there, untouched. */
function assertUntouched(ran: Ran): void {
  for (const [name, was] of ran.before) {
    const info = Deno.statSync(join(ran.dir, name));
    assertEquals(info.ino, was.ino, `${name} was replaced`);
    assertEquals(sha256(join(ran.dir, name)), was.sha, `${name} changed`);
  }
}

Deno.test("rename: the rerun of an interrupted send resumes the partial into a new numbered copy", async () => {
  // The report: DIR held c.bin and c (1).bin, unchanged copies of the source.
  await using tmp = await tempDir("ferry-rerun-");
  const ran = await run(tmp.path, {
    first: "rename",
    then: "rename",
    sources: ["c.bin"],
    copies: ["c.bin", "c (1).bin"],
  });
  const { rerun, dir, src } = ran;
  assertEquals(rerun.code, 0, rerun.stderr);
  assertStringIncludes(rerun.stdout, "sent c.bin as c (2).bin");
  assertStringIncludes(rerun.stdout, "ferry: sent 1 file (");
  assertStringIncludes(rerun.stdout, "resumed) to ");
  assert(!rerun.stdout.includes("already there"), rerun.stdout);
  assertEquals(names(dir), ["c (1).bin", "c (2).bin", "c.bin"]);
  assertEquals(sha256(join(dir, "c (2).bin")), sha256(join(src, "c.bin")));
  assertEquals(Deno.statSync(join(dir, "c (2).bin")).mtime, MTIME);
  assertUntouched(ran);
  assertEquals(partials(dir), { count: 0, bytes: 0 });
});

Deno.test("overwrite: the rerun of an interrupted send resumes the partial and replaces the file", async () => {
  await using tmp = await tempDir("ferry-rerun-");
  const ran = await run(tmp.path, {
    first: "overwrite",
    then: "overwrite",
    sources: ["c.bin"],
    copies: ["c.bin"],
  });
  const { rerun, dir, src } = ran;
  assertEquals(rerun.code, 0, rerun.stderr);
  assertStringIncludes(rerun.stdout, "ferry: sent 1 file (");
  assertStringIncludes(rerun.stdout, "resumed) to ");
  assert(!rerun.stdout.includes("already there"), rerun.stdout);
  assertEquals(names(dir), ["c.bin"]);
  // Replaced (a new file under the name), with the same content.
  assertNotEquals(Deno.statSync(join(dir, "c.bin")).ino, ran.before.get("c.bin")!.ino);
  assertEquals(sha256(join(dir, "c.bin")), sha256(join(src, "c.bin")));
  assertEquals(partials(dir), { count: 0, bytes: 0 });
});

for (const policy of ["skip", "fail"] as const) {
  const outcome = policy === "skip" ? "is skipped again" : "is refused again";

  Deno.test(`${policy}: in the rerun of an interrupted send, the file DIR held ${outcome}, the rest resumes`, async () => {
    // c.bin is not sent (it exists); d.bin is cut mid-file.
    await using tmp = await tempDir("ferry-rerun-");
    const ran = await run(tmp.path, {
      first: policy,
      then: policy,
      sources: ["c.bin", "d.bin"],
      copies: ["c.bin"],
    });
    const { rerun, dir, src } = ran;
    assert(!rerun.stdout.includes("already there"), rerun.stdout);
    if (policy === "skip") {
      assertEquals(rerun.code, 0, rerun.stderr);
      assertStringIncludes(rerun.stderr, "ferry: skipped c.bin: skipped by the receiver");
      assertStringIncludes(rerun.stdout, ", 1 skipped");
    } else {
      assertEquals(rerun.code, 1, rerun.stdout);
      assertStringIncludes(
        rerun.stderr,
        "ferry: failed c.bin: refused by the receiver: already exists on the receiver",
      );
      assertStringIncludes(rerun.stderr, ", 1 failed");
    }
    assertStringIncludes(rerun.stdout + rerun.stderr, "ferry: sent 1 file (");
    assertStringIncludes(rerun.stdout + rerun.stderr, "resumed) to ");
    assertEquals(names(dir), ["c.bin", "d.bin"]);
    assertEquals(sha256(join(dir, "d.bin")), sha256(join(src, "d.bin")));
    assertUntouched(ran);
    assertEquals(partials(dir), { count: 0, bytes: 0 });
  });

  Deno.test(`${policy}: restarted with --on-conflict ${policy}, the rerun leaves no partial of the file it does not take`, async () => {
    // The first serve took a new copy (rename) and was cut mid-file; the second keeps DIR's.
    await using tmp = await tempDir("ferry-rerun-");
    const ran = await run(tmp.path, {
      first: "rename",
      then: policy,
      sources: ["c.bin"],
      copies: ["c.bin"],
    });
    const { rerun, dir } = ran;
    assert(!rerun.stdout.includes("already there"), rerun.stdout);
    if (policy === "skip") {
      assertEquals(rerun.code, 0, rerun.stderr);
      assertStringIncludes(rerun.stderr, "ferry: skipped c.bin: skipped by the receiver");
      assertStringIncludes(rerun.stdout, "ferry: sent 0 files (0 B) to ");
      assertStringIncludes(rerun.stdout, ", 1 skipped");
    } else {
      assertEquals(rerun.code, 1, rerun.stdout);
      assertStringIncludes(
        rerun.stderr,
        "ferry: failed c.bin: refused by the receiver: already exists on the receiver",
      );
    }
    assertEquals(names(dir), ["c.bin"]);
    assertUntouched(ran);
    assertEquals(partials(dir), { count: 0, bytes: 0 });
  });
}

for (const policy of ["rename", "overwrite"] as const) {
  const stored = policy === "rename" ? "c (1).bin" : "c.bin";

  Deno.test(`${policy}: a file the interrupted run stored (as ${stored}) is already there in the rerun`, async () => {
    // c.bin arrives whole (a new copy, or replacing DIR's), then d.bin is cut mid-file.
    await using tmp = await tempDir("ferry-rerun-");
    const ran = await run(tmp.path, {
      first: policy,
      then: policy,
      sources: ["c.bin", "d.bin"],
      sizes: { "c.bin": 2_000_000 },
      copies: ["c.bin"],
      stallAt: 2_000_000 + STALL_AT,
      // c.bin is in place: a new name, or a new file under the old one.
      ready: (dir, before) =>
        policy === "rename"
          ? names(dir).includes(stored)
          : Deno.statSync(join(dir, stored)).ino !== before.get(stored)!.ino,
    });
    const { rerun, dir, src } = ran;
    assertEquals(rerun.code, 0, rerun.stderr);
    assertStringIncludes(rerun.stdout, "resumed) to ");
    assertStringIncludes(rerun.stdout, ", 1 already there");
    assert(!rerun.stdout.includes("sent c.bin"), rerun.stdout);
    assertEquals(
      names(dir),
      policy === "rename" ? ["c (1).bin", "c.bin", "d.bin"] : ["c.bin", "d.bin"],
    );
    assertEquals(sha256(join(dir, stored)), sha256(join(src, "c.bin")));
    assertEquals(sha256(join(dir, "d.bin")), sha256(join(src, "d.bin")));
    if (policy === "rename") assertUntouched(ran);
    assertEquals(partials(dir), { count: 0, bytes: 0 });
  });
}

Deno.test("update: the rerun of an interrupted sync resumes; the unchanged file DIR held is left as it is", async () => {
  // c.bin is DIR's already (not sent), d.bin is cut mid-file.
  await using tmp = await tempDir("ferry-rerun-");
  const ran = await run(tmp.path, {
    first: "update",
    then: "update",
    sources: ["c.bin", "d.bin"],
    copies: ["c.bin"],
  });
  const { rerun, dir, src } = ran;
  assertEquals(rerun.code, 0, rerun.stderr);
  assertStringIncludes(rerun.stdout, "ferry: sent 1 file (");
  assertStringIncludes(rerun.stdout, "resumed) to ");
  assertStringIncludes(rerun.stdout, ", 1 new, 0 updated, 1 unchanged");
  assertEquals(names(dir), ["c.bin", "d.bin"]);
  assertEquals(sha256(join(dir, "d.bin")), sha256(join(src, "d.bin")));
  assertUntouched(ran);
  assertEquals(partials(dir), { count: 0, bytes: 0 });
});

Deno.test("update: an interrupted sync keeps the old file until the new one, resumed, replaces it", async () => {
  await using tmp = await tempDir("ferry-rerun-");
  const ran = await run(tmp.path, {
    first: "update",
    then: "update",
    sources: ["c.bin"],
    copies: ["c.bin"],
    stale: true,
    // Half the new c.bin is held; the old one is still there, whole.
    ready: (dir, before) => sha256(join(dir, "c.bin")) === before.get("c.bin")!.sha,
  });
  const { rerun, dir, src } = ran;
  assertEquals(rerun.code, 0, rerun.stderr);
  assertStringIncludes(rerun.stdout, "resumed) to ");
  assertStringIncludes(rerun.stdout, ", 0 new, 1 updated, 0 unchanged");
  assertEquals(names(dir), ["c.bin"]);
  assertNotEquals(Deno.statSync(join(dir, "c.bin")).ino, ran.before.get("c.bin")!.ino);
  assertEquals(sha256(join(dir, "c.bin")), sha256(join(src, "c.bin")));
  assertEquals(Deno.statSync(join(dir, "c.bin")).mtime, MTIME);
  assertEquals(partials(dir), { count: 0, bytes: 0 });
});

Deno.test("a completed transfer run again is a new copy, also when DIR held the file before", async () => {
  // Unchanged behaviour (README: a transfer that completed is done): no interruption, two runs.
  await using tmp = await tempDir("ferry-rerun-");
  const base = tmp.path;
  const src = join(base, "src");
  const dir = join(base, "inbox");
  await Deno.mkdir(src);
  await Deno.mkdir(dir);
  await makeFile(join(src, "c.bin"), 2_000_000);
  await copyUnchanged(join(src, "c.bin"), join(dir, "c.bin"));
  const port = freePort();
  const server = await serve(dir, port, "rename");
  try {
    for (const copy of ["c (1).bin", "c (2).bin"]) {
      const sent = await send([join(src, "c.bin"), "--to", `127.0.0.1:${port}`]);
      assertEquals(sent.code, 0, sent.stderr);
      assertStringIncludes(sent.stdout, `sent c.bin as ${copy}`);
    }
  } finally {
    await server.stop();
  }
  assertEquals(names(dir), ["c (1).bin", "c (2).bin", "c.bin"]);
  assertGreater(Deno.statSync(join(dir, "c (2).bin")).size, 0);
});
