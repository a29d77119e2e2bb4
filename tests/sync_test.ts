/**
 * Sync (`serve --on-conflict update`, `send --checksum`), end to end through the CLI with the
 * shipped permissions: a tree sent, changed in every way a quick check can and cannot see, and
 * sent again ends up equal to the source, nothing duplicated, with the counts right on both
 * sides; an unchanged tree sends no file data; a link at a file's name is replaced, never
 * followed; and a receiver that claims what it cannot know is not believed.
 */
import { assert, assertEquals, assertFalse, assertStringIncludes } from "@std/assert";
import { join } from "node:path";
import { FrameType } from "../src/protocol/frame.ts";
import { PROTOCOL_VERSION } from "../src/protocol/preamble.ts";
import {
  contents,
  RawClient,
  runCli,
  type ServeProcess,
  snapshot,
  spawnServe,
  tempDir,
  writeTree,
} from "./_harness.ts";
import { type Json, parseNdjson, SEND_TYPES, SERVE_TYPES } from "./_ndjson.ts";
import { type Script, sendTo } from "./_scripted_receiver.ts";

const OLD = new Date("2024-03-01T12:00:00Z");
const OLDER = new Date("2023-01-01T00:00:00Z");

/** `ferry send SRC --to serve` with `extra` options. */
function send(src: string, serve: ServeProcess, ...extra: string[]) {
  return runCli(["send", src, "--to", `127.0.0.1:${serve.port}`, ...extra]);
}

/** The JSON summary `send --json` ended with. */
function sendSummary(stdout: string): Json {
  const objects = parseNdjson(stdout, SEND_TYPES);
  const last = objects.at(-1)!;
  assertEquals(last.type, "summary", stdout);
  return last;
}

/** The receiver's JSON objects of session `n` (serve --json), from its output so far. */
function sessionObjects(serve: ServeProcess, n: number): Json[] {
  return parseNdjson(serve.stdout(), SERVE_TYPES).filter((o) => o.session === n);
}

/** Waits for the receiver's summary of session `n`. */
async function serveSummary(serve: ServeProcess, n: number): Promise<Json> {
  for (let i = 0; i < 400; i++) {
    const found = sessionObjects(serve, n).find((o) => o.type === "summary");
    if (found) return found;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`no summary of session ${n}:\n${serve.output()}`);
}

/** Every file below `root`, with its kind, size, SHA-256 and (files) mtime. */
async function files(root: string) {
  const tree = await snapshot(root);
  const out: Record<string, unknown> = {};
  for (const [path, e] of Object.entries(contents(tree))) {
    out[path] = e.kind === "file" ? { ...e, mtime: tree[path]!.mtime } : { kind: e.kind };
  }
  return out;
}

Deno.test("update: a tree synced, changed and synced again equals the source; counts on both sides", async () => {
  await using tmp = await tempDir("ferry-sync-");
  const src = join(tmp.path, "src");
  const dir = join(tmp.path, "inbox");
  await writeTree(src, {
    "same.txt": { data: "the same", mtime: OLD },
    "content.bin": { data: "AAAAAAAA", mtime: OLD },
    "size.txt": { data: "short", mtime: OLD },
    "time.txt": { data: "touched", mtime: OLD },
    "sub/deep.txt": { data: "deep", mtime: OLD },
    "f2d": { data: "a file, later a folder", mtime: OLD },
    "d2f/x.txt": { data: "in a folder, later a file", mtime: OLD },
  });
  const serve = await spawnServe(dir, ["--on-conflict", "update", "--no-discovery", "--json"], {
    ready: (out) => out.includes('"type":"start"'),
  });
  try {
    const first = await send(src, serve, "--json");
    assertEquals(first.code, 0, first.stderr);
    const s1 = sendSummary(first.stdout);
    assertEquals([s1.files, s1.new, s1.updated, s1.unchanged], [7, 7, 0, 0]);

    // Content changed at the same size, its time put back: only --checksum can see it.
    await Deno.writeTextFile(join(src, "content.bin"), "BBBBBBBB");
    await Deno.utime(join(src, "content.bin"), OLD, OLD);
    await Deno.writeTextFile(join(src, "size.txt"), "longer now");
    await Deno.utime(join(src, "size.txt"), OLD, OLD);
    await Deno.utime(join(src, "time.txt"), OLDER, OLDER);
    await Deno.writeTextFile(join(src, "new.txt"), "new");
    await Deno.remove(join(src, "f2d"));
    await writeTree(src, { "f2d/inner.txt": { data: "now in a folder", mtime: OLD } });
    await Deno.remove(join(src, "d2f"), { recursive: true });
    await writeTree(src, { "d2f": { data: "now a file", mtime: OLD } });

    // Size and time are seen; a folder where a file is (and the reverse) is refused, with why.
    const second = await send(src, serve);
    assertEquals(second.code, 1, second.stdout);
    assertStringIncludes(
      second.stderr,
      "src/f2d/inner.txt: refused by the receiver: a file is in the way of a directory",
    );
    assertStringIncludes(
      second.stderr,
      "src/d2f: refused by the receiver: a directory is in the way",
    );
    assertStringIncludes(
      second.stderr,
      "ferry: sent 3 files (20 B) to 127.0.0.1:" + serve.port,
    );
    assertStringIncludes(second.stderr, ", 1 new, 2 updated, 3 unchanged, 3 failed");
    assertEquals(await Deno.readTextFile(join(dir, "src/content.bin")), "AAAAAAAA");
    const r2 = await serveSummary(serve, 2);
    assertEquals([r2.files, r2.new, r2.updated, r2.unchanged, r2.failed], [3, 1, 2, 3, 3]);
    // The sender found those three in the receiver's listing (§5.16): never announced, so the
    // receiver stored nothing of them and counts them from the sender's LISTED.
    assertEquals(
      sessionObjects(serve, 2).filter((o) => o.type === "file-start").map((o) => o.path).sort(),
      ["src/new.txt", "src/size.txt", "src/time.txt"],
    );

    // --checksum reads both copies: the changed content is sent, the rest is not.
    const third = await send(src, serve, "--checksum", "--json");
    assertEquals(third.code, 1, third.stdout);
    const s3 = sendSummary(third.stdout);
    assertEquals([s3.files, s3.bytes, s3.new, s3.updated, s3.unchanged], [1, 8, 0, 1, 5]);
    const done = parseNdjson(third.stdout, SEND_TYPES).filter((o) => o.type === "file-done");
    assertEquals(done.map((o) => [o.path, o.replaced]), [["src/content.bin", true]]);
    assertEquals(await Deno.readTextFile(join(dir, "src/content.bin")), "BBBBBBBB");

    // Once the receiver's side makes room, the changed kinds go through too.
    await Deno.remove(join(dir, "src/f2d"));
    await Deno.remove(join(dir, "src/d2f"), { recursive: true });
    const fourth = await send(src, serve);
    assertEquals(fourth.code, 0, fourth.stderr);
    assertStringIncludes(fourth.stdout, ", 2 new, 0 updated, 6 unchanged");
    assertEquals(await files(join(dir, "src")), await files(src));
    assertFalse(JSON.stringify(await snapshot(dir)).includes("(1)"), "nothing duplicated");

    // An unchanged tree sends no file data: no file starts on the receiver, no byte counted.
    const fifth = await send(src, serve, "--json");
    assertEquals(fifth.code, 0, fifth.stderr);
    const s5 = sendSummary(fifth.stdout);
    assertEquals([s5.files, s5.bytes, s5.unchanged, s5.ok], [0, 0, 8, true]);
    assertEquals(
      parseNdjson(fifth.stdout, SEND_TYPES).filter((o) => o.type === "unchanged").length,
      8,
    );
    assertFalse(parseNdjson(fifth.stdout, SEND_TYPES).some((o) => o.type === "file-start"));
    const r5 = await serveSummary(serve, 5);
    assertEquals([r5.files, r5.bytes, r5.unchanged, r5.ok], [0, 0, 8, true]);
    assertFalse(sessionObjects(serve, 5).some((o) => o.type === "file-start"));
    assertEquals(await files(join(dir, "src")), await files(src));
  } finally {
    await serve.stop();
  }
});

Deno.test("update: folders get the sender's times, as rsync -a gives them; one already there keeps its mode", async () => {
  await using tmp = await tempDir("ferry-sync-");
  const src = join(tmp.path, "src");
  const dir = join(tmp.path, "inbox");
  await writeTree(src, {
    "a/b/x.txt": { data: "x", mtime: OLD },
    "a/y.txt": { data: "y", mtime: OLD },
  });
  const setFolderTimes = async (when: Date) => {
    for (const folder of ["a/b", "a", ""]) await Deno.utime(join(src, folder), when, when);
  };
  await setFolderTimes(OLDER);
  // The receiver has src/a already, private, with a file of its own in it.
  await Deno.mkdir(join(dir, "src/a"), { recursive: true });
  await Deno.writeTextFile(join(dir, "src/a/mine.txt"), "the receiver's");
  await Deno.chmod(join(dir, "src/a"), 0o700);
  const mtimeOf = async (path: string) => (await Deno.stat(path)).mtime!.getTime();
  const modeOf = async (path: string) => (await Deno.stat(path)).mode! & 0o777;
  const serve = await spawnServe(dir, ["--on-conflict", "update", "--no-discovery", "--json"], {
    ready: (out) => out.includes('"type":"start"'),
  });
  try {
    const sameTimes = async () => {
      for (const folder of ["a/b", "a", ""]) {
        assertEquals(
          await mtimeOf(join(dir, "src", folder)),
          await mtimeOf(join(src, folder)),
          `src/${folder}`,
        );
      }
    };
    const first = await send(src, serve);
    assertEquals(first.code, 0, first.stderr);
    await sameTimes();
    assertEquals(await modeOf(join(dir, "src/a")), 0o700, "an existing folder keeps its mode");
    assertEquals(await modeOf(join(dir, "src/a/b")), await modeOf(join(src, "a/b")));
    assertEquals(await Deno.readTextFile(join(dir, "src/a/mine.txt")), "the receiver's");

    // A file replaced in a folder changes the folder's time on the receiver; the sync puts the
    // sender's back, also on folders whose time the sender changed.
    await Deno.writeTextFile(join(src, "a/b/x.txt"), "x, changed");
    await Deno.utime(join(src, "a/b/x.txt"), OLDER, OLDER);
    await setFolderTimes(OLD);
    const second = await send(src, serve);
    assertEquals(second.code, 0, second.stderr);
    assertStringIncludes(second.stdout, ", 0 new, 1 updated, 1 unchanged");
    await sameTimes();
    assertEquals(await modeOf(join(dir, "src/a")), 0o700);
  } finally {
    await serve.stop();
  }
});

Deno.test("update: a link at a file's name is replaced by the file, never followed or read", async () => {
  await using tmp = await tempDir("ferry-sync-");
  const src = join(tmp.path, "src");
  const dir = join(tmp.path, "inbox");
  const outside = join(tmp.path, "outside");
  // Outside DIR, exact copies of the sources: read through a link, they would look unchanged.
  const tree = {
    "a.txt": { data: "same content", mtime: OLD },
    "b.txt": { data: "other content", mtime: OLD },
  };
  await writeTree(src, tree);
  await writeTree(outside, tree);
  await Deno.mkdir(join(dir, "src"), { recursive: true });
  await Deno.symlink(join(outside, "a.txt"), join(dir, "src/a.txt"));
  await Deno.symlink(join(outside, "b.txt"), join(dir, "src/b.txt"));
  const serve = await spawnServe(dir, ["--on-conflict", "update", "--no-discovery"]);
  let log: string;
  try {
    const quick = await send(src, serve);
    assertEquals(quick.code, 0, quick.stderr);
    assertStringIncludes(quick.stdout, "ferry: sent 2 files (25 B)");
    assertStringIncludes(quick.stdout, ", 0 new, 2 updated, 0 unchanged");
    // Again, links back, compared by content: still replaced, still not read.
    await Deno.remove(join(dir, "src/a.txt"));
    await Deno.symlink(join(outside, "a.txt"), join(dir, "src/a.txt"));
    const checked = await send(src, serve, "--checksum");
    assertEquals(checked.code, 0, checked.stderr);
    assertStringIncludes(checked.stdout, ", 0 new, 1 updated, 1 unchanged");
  } finally {
    log = (await serve.stop()).stdout;
  }
  for (const name of ["a.txt", "b.txt"]) {
    const info = await Deno.lstat(join(dir, "src", name));
    assert(info.isFile, `${name} is a regular file now`);
  }
  assertEquals(await files(join(dir, "src")), await files(src));
  assertEquals(await files(outside), await files(src), "what the links pointed to is untouched");
  assertStringIncludes(log, "received 2 files (25 B), 0 new, 2 updated, 0 unchanged from");
  assertStringIncludes(log, "received 1 file (12 B), 0 new, 1 updated, 1 unchanged from");
});

const WITH_SYNC = ["resume", "sync"];
const accept = { action: "accept", offset: 0 };

Deno.test("send is not fooled by a receiver claiming unchanged or replaced where it cannot", async () => {
  await using tmp = await tempDir("ferry-sync-");
  const src = join(tmp.path, "src");
  await writeTree(src, { "a.txt": "hello", "d/b.txt": "world" });
  const cases: { what: string; script: Script; stdin?: boolean }[] = [
    {
      what: "unchanged from a receiver without the sync feature",
      script: {
        features: ["resume"],
        decide: () => ({ action: "skip", reason: "unchanged", unchanged: true }),
      },
    },
    {
      what: "a folder unchanged",
      script: {
        features: WITH_SYNC,
        decide: (e) =>
          e.kind === "dir" ? { action: "skip", reason: "unchanged", unchanged: true } : accept,
      },
    },
    {
      what: "standard input (no size, nothing to compare) unchanged",
      script: {
        features: WITH_SYNC,
        decide: () => ({ action: "skip", reason: "unchanged", unchanged: true }),
      },
      stdin: true,
    },
    {
      what: "an accepted file unchanged",
      script: { features: WITH_SYNC, decide: () => ({ ...accept, unchanged: true }) },
    },
    {
      what: "a file that failed replaced",
      script: {
        features: WITH_SYNC,
        decide: () => accept,
        ack: () => ({ ok: false, reason: "disk full", replaced: true }),
      },
    },
    {
      what: "replaced from a receiver without the sync feature",
      script: {
        features: ["resume"],
        decide: () => accept,
        ack: (e) => ({ ok: true, name: e.path, replaced: true }),
      },
    },
  ];
  for (const { what, script, stdin } of cases) {
    const args = stdin ? ["-", "--json"] : [src, "--json"];
    const result = await sendTo(script, args, stdin ? new TextEncoder().encode("x") : undefined);
    assertEquals(result.code, 1, `${what}:\n${result.stdout}${result.stderr}`);
    const last = parseNdjson(result.stdout, SEND_TYPES).at(-1)!;
    assertEquals([last.type, last.code], ["error", "protocol"], `${what}: ${result.stdout}`);
    assertFalse(result.stdout.includes('"ok":true'), what);
    assertFalse(result.stdout.includes('"type":"unchanged"'), what);
  }
});

Deno.test("send --checksum refuses a receiver without the sync feature before any entry or data", async () => {
  await using tmp = await tempDir("ferry-sync-");
  const src = join(tmp.path, "src");
  await writeTree(src, { "a.txt": "hello" });
  const result = await sendTo(
    { features: ["resume"], decide: () => accept },
    [src, "--checksum"],
  );
  assertEquals(result.code, 1, result.stdout);
  assertEquals(result.stdout, "");
  const lines = result.stderr.trim().split("\n");
  assertStringIncludes(lines[0]!, "does not support --checksum");
  assertStringIncludes(lines[0]!, "nothing was sent");
  assertEquals(result.frames, [FrameType.DONE], "no ANNOUNCE, no DATA: only DONE");
  // The same receiver with the feature gets each file's digest in its entry.
  const seen: Record<string, unknown>[] = [];
  const ok = await sendTo(
    { features: WITH_SYNC, decide: (e) => (seen.push(e), accept) },
    [src, "--checksum"],
  );
  assertEquals(ok.code, 0, ok.stderr);
  const file = seen.find((e) => e.kind === "file")!;
  // SHA-256 of "hello": the session's digest, as WELCOME chose it.
  assertEquals(file.digest, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
  assertEquals(seen.find((e) => e.kind === "dir")!.digest, undefined);
});

Deno.test("NOOP while the receiver compares: taken from a receiver with sync, refused from one without", async () => {
  await using tmp = await tempDir("ferry-sync-");
  const src = join(tmp.path, "src");
  await writeTree(src, { "a.txt": "hello" });
  const ok = await sendTo({ features: WITH_SYNC, noops: 3, decide: () => accept }, [src]);
  assertEquals(ok.code, 0, ok.stderr);
  const old = await sendTo({ features: ["resume"], noops: 1, decide: () => accept }, [src]);
  assertEquals(old.code, 1, old.stdout);
  assertStringIncludes(old.stderr, "NOOP from a receiver without sync");
});

Deno.test("serve takes NOOPs from a sender that named sync, and answers DONE with BYE", async () => {
  await using tmp = await tempDir("ferry-sync-");
  const serve = await spawnServe(join(tmp.path, "inbox"), ["--on-conflict", "update"]);
  const client = await RawClient.connect(serve.port);
  try {
    const welcome = await client.handshake(PROTOCOL_VERSION, { features: ["resume", "sync"] });
    assertEquals(welcome?.type, FrameType.WELCOME);
    const features = JSON.parse(new TextDecoder().decode(welcome!.payload)).features;
    assertEquals(features, ["resume", "sync", "text", "listing"]);
    for (let i = 0; i < 3; i++) await client.send(FrameType.NOOP, new Uint8Array(0));
    await client.send(FrameType.DONE, new Uint8Array(0));
    const bye = await client.next();
    assertEquals(bye?.type, FrameType.BYE);
  } finally {
    client.close();
    await serve.stop();
  }
});

Deno.test("update: a hard link at a file's name is replaced by a new file; the other name keeps its content", async () => {
  await using tmp = await tempDir("ferry-sync-");
  const src = join(tmp.path, "src");
  const dir = join(tmp.path, "inbox");
  const other = join(tmp.path, "other");
  await writeTree(src, { "a.txt": { data: "new content", mtime: OLD } });
  await Deno.chmod(join(src, "a.txt"), 0o640);
  await writeTree(other, { "a.txt": { data: "old content, other name", mtime: OLDER } });
  await Deno.mkdir(join(dir, "src"), { recursive: true });
  await Deno.link(join(other, "a.txt"), join(dir, "src/a.txt"));
  const serve = await spawnServe(dir, ["--on-conflict", "update", "--no-discovery"]);
  try {
    const sent = await send(src, serve);
    assertEquals(sent.code, 0, sent.stderr);
    assertStringIncludes(sent.stdout, ", 0 new, 1 updated, 0 unchanged");
  } finally {
    await serve.stop();
  }
  assertEquals(await Deno.readTextFile(join(other, "a.txt")), "old content, other name");
  const placed = await Deno.lstat(join(dir, "src/a.txt"));
  assertEquals(await Deno.readTextFile(join(dir, "src/a.txt")), "new content");
  assertEquals([placed.nlink, placed.mode! & 0o777, placed.mtime?.getTime()], [
    1,
    0o640,
    OLD.getTime(),
  ]);
});
