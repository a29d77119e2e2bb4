/**
 * End-to-end: the real CLI, `ferry serve` and `ferry send` as separate
 * processes on 127.0.0.1, compared byte for byte.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { join } from "node:path";
import {
  freePort,
  randomBytes,
  runCli,
  snapshot,
  spawnServe,
  tempDir,
  TEST_CODE,
  type TreeSpec,
  writeTree,
} from "./_harness.ts";

/**
 * A tree with nested and empty folders, an empty file, a dot file, an executable, a
 * non-ASCII name, and distinct old modification times, so that "kept" is distinguishable
 * from "now".
 */
function sampleTree(): TreeSpec {
  return {
    "nested/deeper": { dir: true, mtime: 1_400_000_000 },
    "nested/deeper/deepest/random.bin": { data: randomBytes(300_000), mtime: 1_500_000_000.123 },
    "nested/also empty": { dir: true },
    "nested/ünïcødé — 日本語 🎉.txt": "grüße\n",
    "empty": { dir: true },
    "zero.bin": { data: new Uint8Array(0), mtime: 1_000_000 },
    ".hidden": "dot file",
    "run.sh": { data: "#!/bin/sh\necho hi\n", mode: 0o755 },
  };
}

Deno.test("send delivers the original 5 KB project.txt whole, and both sides report success", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const inbox = join(base, "inbox");
  const data = randomBytes(5 * 1024);
  await Deno.writeFile(join(base, "project.txt"), data);
  const serve = await spawnServe(inbox);
  try {
    const sent = await runCli([
      "send",
      join(base, "project.txt"),
      "--to",
      `127.0.0.1:${serve.port}`,
    ]);
    assertEquals(sent.code, 0, sent.stderr);
    assertStringIncludes(sent.stdout, "sent project.txt (5.12 kB)");
    assertEquals(await Deno.readFile(join(inbox, "project.txt")), data);
  } finally {
    const stopped = await serve.stop();
    assertEquals(stopped.code, 0);
    assertStringIncludes(stopped.stdout, "received 1 file (5.12 kB)");
  }
});

Deno.test("send takes a file named through a folder that is a link (a home folder that is one)", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const inbox = join(base, "inbox");
  const data = randomBytes(5 * 1024);
  await Deno.mkdir(join(base, "real"));
  await Deno.writeFile(join(base, "real", "notes.txt"), data);
  await Deno.symlink(join(base, "real"), join(base, "home"));
  const serve = await spawnServe(inbox);
  try {
    const sent = await runCli([
      "send",
      join(base, "home", "notes.txt"),
      "--to",
      `127.0.0.1:${serve.port}`,
    ]);
    assertEquals(sent.code, 0, sent.stderr);
    assertEquals(await Deno.readFile(join(inbox, "notes.txt")), data);
  } finally {
    await serve.stop();
  }
});

Deno.test("send reproduces a tree exactly: nested and empty directories, 0-byte and non-ASCII files, mtimes, modes", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const src = join(base, "tree");
  const inbox = join(base, "inbox");
  await writeTree(src, sampleTree());
  await Deno.symlink("zero.bin", join(src, "link-to-zero"));
  const serve = await spawnServe(inbox);
  try {
    const sent = await runCli(["send", src, "--to", `127.0.0.1:${serve.port}`]);
    assertEquals(sent.code, 0, sent.stderr);
    assertStringIncludes(sent.stderr, "skipped tree/link-to-zero: symbolic link, not followed");
    const expected = await snapshot(src);
    delete expected["link-to-zero"];
    assertEquals(await snapshot(join(inbox, "tree")), expected);
    assertEquals((await snapshot(inbox))["tree/nested/deeper"]?.mtime, 1_400_000_000_000);
    assertEquals((await snapshot(inbox))["tree/run.sh"]?.mode, 0o755);
  } finally {
    await serve.stop();
  }
});

Deno.test("sending the same tree again keeps both copies", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const src = join(base, "tree");
  const inbox = join(base, "inbox");
  await writeTree(src, sampleTree());
  const serve = await spawnServe(inbox);
  try {
    const first = await runCli(["send", src, "--to", `127.0.0.1:${serve.port}`]);
    assertEquals(first.code, 0, first.stderr);
    const second = await runCli(["send", src, "--to", `127.0.0.1:${serve.port}`]);
    assertEquals(second.code, 0, second.stderr);
    assertStringIncludes(second.stdout, "sent tree/zero.bin as tree/zero (1).bin");
    const tree = await snapshot(join(inbox, "tree"));
    const original = await snapshot(src);
    for (const [path, entry] of Object.entries(original)) {
      if (entry.kind !== "file") continue;
      assertEquals(tree[path]?.sha256, entry.sha256, path);
      const slash = path.lastIndexOf("/") + 1;
      const dot = path.lastIndexOf(".");
      const copy = dot > slash ? `${path.slice(0, dot)} (1)${path.slice(dot)}` : `${path} (1)`;
      assertEquals(tree[copy]?.sha256, entry.sha256, copy);
    }
  } finally {
    await serve.stop();
  }
});

Deno.test("a 100 MB file arrives byte for byte", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const inbox = join(base, "inbox");
  const big = join(base, "big.bin");
  const file = await Deno.open(big, { write: true, create: true });
  const chunk = randomBytes(1024 * 1024);
  for (let i = 0; i < 100; i++) {
    chunk[0] = i; // every MiB differs
    await file.write(chunk);
  }
  file.close();
  const serve = await spawnServe(inbox);
  try {
    const sent = await runCli(["send", big, "--to", `127.0.0.1:${serve.port}`, "--quiet"]);
    assertEquals(sent.code, 0, sent.stderr);
    assertEquals((await snapshot(inbox))["big.bin"], (await snapshot(base))["big.bin"]);
  } finally {
    await serve.stop();
  }
});

Deno.test("2,500 small files span several batches and the sender's unacknowledged limit, and arrive whole", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const src = join(base, "many");
  const inbox = join(base, "inbox");
  for (let d = 0; d < 5; d++) await Deno.mkdir(join(src, `d${d}`), { recursive: true });
  for (let i = 0; i < 2500; i++) {
    await Deno.writeFile(join(src, `d${i % 5}`, `f${i}.bin`), randomBytes(i % 7 === 0 ? 0 : 64));
  }
  const serve = await spawnServe(inbox);
  try {
    const sent = await runCli(["send", src, "--to", `127.0.0.1:${serve.port}`]);
    assertEquals(sent.code, 0, sent.stderr);
    assertStringIncludes(sent.stdout, "sent 2500 files");
    assertEquals(await snapshot(join(inbox, "many")), await snapshot(src));
  } finally {
    await serve.stop();
  }
});

Deno.test("send - takes standard input under --name", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const inbox = join(base, "inbox");
  const data = randomBytes(2_500_000);
  const serve = await spawnServe(inbox);
  try {
    const sent = await runCli([
      "send",
      "-",
      "--name",
      "dump.sql",
      "--to",
      `127.0.0.1:${serve.port}`,
    ], {
      stdin: data,
    });
    assertEquals(sent.code, 0, sent.stderr);
    assertEquals(await Deno.readFile(join(inbox, "dump.sql")), data);
  } finally {
    await serve.stop();
  }
});

Deno.test("the receiver drops setuid, setgid, sticky and group/other write bits", async () => {
  if (Deno.build.os === "windows") return;
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const inbox = join(base, "inbox");
  const path = join(base, "tool");
  await Deno.writeTextFile(path, "x");
  await Deno.chmod(path, 0o7777);
  const serve = await spawnServe(inbox);
  try {
    const sent = await runCli(["send", path, "--to", `127.0.0.1:${serve.port}`]);
    assertEquals(sent.code, 0, sent.stderr);
    assertEquals((await Deno.stat(join(inbox, "tool"))).mode! & 0o7777, 0o755);
  } finally {
    await serve.stop();
  }
});

Deno.test("serve --on-conflict overwrite, skip and fail", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  await Deno.writeTextFile(join(base, "a.txt"), "new");
  for (
    const [policy, code, content, message] of [
      ["overwrite", 0, "new", /sent 1 file/],
      ["skip", 0, "old", /skipped a.txt: skipped by the receiver: already exists/],
      ["fail", 1, "old", /failed a.txt: refused by the receiver: already exists on the receiver/],
    ] as const
  ) {
    const inbox = join(base, `inbox-${policy}`);
    await Deno.mkdir(inbox);
    await Deno.writeTextFile(join(inbox, "a.txt"), "old");
    const serve = await spawnServe(inbox, ["--on-conflict", policy]);
    try {
      const sent = await runCli(["send", join(base, "a.txt"), "--to", `127.0.0.1:${serve.port}`]);
      assertEquals(sent.code, code, `${policy}: ${sent.stderr}`);
      assertMatch(sent.stdout + sent.stderr, message);
      assertEquals(await Deno.readTextFile(join(inbox, "a.txt")), content, policy);
      assertEquals(Object.keys(await snapshot(inbox)), ["a.txt"], policy);
    } finally {
      await serve.stop();
    }
  }
});

Deno.test("a name the receiver refuses fails that file with the reason, exit 1, and the rest arrive", async () => {
  if (Deno.build.os === "windows") return;
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const src = join(base, "src");
  const inbox = join(base, "inbox");
  await Deno.mkdir(src);
  await Deno.writeTextFile(join(src, "CON.txt"), "reserved on Windows");
  await Deno.writeTextFile(join(src, "ok.txt"), "fine");
  await Deno.writeTextFile(join(src, "bad\u001b[31mname"), "escape sequence in the name");
  const serve = await spawnServe(inbox);
  try {
    const sent = await runCli(["send", src, "--to", `127.0.0.1:${serve.port}`]);
    assertEquals(sent.code, 1);
    assertStringIncludes(sent.stderr, "failed src/CON.txt: refused by the receiver: reserved name");
    assertStringIncludes(sent.stderr, "failed src/bad\\u{1b}[31mname: refused by the receiver");
    assert(!(sent.stderr + sent.stdout).includes("\u001b"), "no raw escape character");
    assertMatch(sent.stderr, /sent 1 file .* 2 failed/);
    assertEquals(await Deno.readTextFile(join(inbox, "src/ok.txt")), "fine");
    assertEquals(Object.keys(await snapshot(inbox)).sort(), ["src", "src/ok.txt"]);
  } finally {
    await serve.stop();
  }
});

Deno.test("a refused connection is one clear line and exit 1", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  await Deno.writeTextFile(join(base, "a.txt"), "x");
  const port = freePort();
  const sent = await runCli(["send", join(base, "a.txt"), "--to", `127.0.0.1:${port}`]);
  assertEquals(sent.code, 1);
  assertEquals(
    sent.stderr.trim(),
    `ferry: could not connect to 127.0.0.1:${port}: connection refused (is 'ferry serve' running there, and the port open?)`,
  );
});

Deno.test("a source the runtime keeps out of reach (/dev) is one clear line, not a bug", async () => {
  // Deno refuses device and system paths to any program without full access; the shipped set
  // cannot grant them, so this is a place ferry cannot read, said as such with exit 1.
  const sent = await runCli(["send", "/dev", "--to", "127.0.0.1"]);
  assertEquals(sent.code, 1);
  const lines = sent.stderr.trim().split("\n");
  assertEquals(lines.length, 2, sent.stderr);
  assertMatch(lines[0]!, /^ferry: \/dev: ferry's permissions do not reach it \(.+\)$/);
  assertMatch(lines[1]!, /^\(copy it to an ordinary folder first, or pipe it: .+\)$/);
});

Deno.test("an unknown host and a missing source are one clear line and exit 1", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  await Deno.writeTextFile(join(base, "a.txt"), "x");
  const unknown = await runCli(["send", join(base, "a.txt"), "--to", "no-such-host.invalid"]);
  assertEquals(unknown.code, 1);
  assertMatch(
    unknown.stderr.trim(),
    /^ferry: could not connect to no-such-host\.invalid:4455: .+$/,
  );
  const missing = await runCli(["send", join(base, "nope.txt"), "--to", "127.0.0.1"]);
  assertEquals(missing.code, 1);
  assertEquals(
    missing.stderr.trim(),
    `ferry: ${join(base, "nope.txt")}: no such file or directory`,
  );
});

Deno.test("usage errors exit 2 with one line and a hint", async () => {
  for (
    const [args, message] of [
      // Without --to, send looks for a server on the LAN (tests/discovery_test.ts).
      [["send", "a.txt", "--to"], "ferry: --to needs a value"],
      [["send", "--to", "h"], "ferry: send needs at least one PATH"],
      [["send", "a", "--to", "h", "--bogus"], "ferry: unknown option '--bogus'"],
      [
        ["send", "a", "--to", "h:99999"],
        "ferry: the port in --to must be a port number from 1 to 65535, not '99999'",
      ],
      [["serve", "--port", "x"], "ferry: --port must be a port number from 1 to 65535, not 'x'"],
      [
        ["send", "a", "--to", "h", "--digest", "md5"],
        "ferry: --digest must be one of xxh128, sha256, not 'md5'",
      ],
      [
        ["serve", "--on-conflict", "merge"],
        "ferry: --on-conflict must be one of rename, overwrite, skip, fail, update, not 'merge'",
      ],
      [["frobnicate"], "ferry: unknown command 'frobnicate'"],
    ] as const
  ) {
    const result = await runCli([...args]);
    assertEquals(result.code, 2, args.join(" "));
    const lines = result.stderr.trim().split("\n");
    assertEquals(lines[0], message);
    assertMatch(lines[1], /^\(run 'ferry( \w+)? --help'|^\(e\.g\.|^\(run 'ferry help'\)/);
    assertEquals(lines.length, 2);
  }
});

Deno.test("--version and help print and exit 0", async () => {
  const version = await runCli(["--version"]);
  assertEquals(version.code, 0);
  assertMatch(version.stdout, /^ferry \d+\.\d+\.\d+\n$/);
  for (
    const args of [["help"], ["--help"], ["serve", "--help"], ["send", "--help"], ["help", "send"]]
  ) {
    const help = await runCli(args);
    assertEquals(help.code, 0, args.join(" "));
    assertStringIncludes(help.stdout, "Usage:");
  }
});

Deno.test("serve prints its directory, addresses and the send command, and refuses a file as DIR", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const serve = await spawnServe(join(base, "in"));
  const stopped = await serve.stop("SIGINT");
  assertEquals(stopped.code, 0);
  assertStringIncludes(stopped.stdout, `receiving into ${await Deno.realPath(join(base, "in"))}`);
  // Started with `deno run` on the source: the command that runs the same way elsewhere.
  assertStringIncludes(
    stopped.stdout,
    `deno run -P=ferry main.ts send PATH... --to 127.0.0.1:${serve.port}\n`,
  );
  // The code from FERRY_CODE is not echoed; no command line carries a code.
  assert(!stopped.stdout.includes(TEST_CODE), stopped.stdout);
  assertStringIncludes(stopped.stdout, "the code: the one in FERRY_CODE (not shown)");
  await Deno.writeTextFile(join(base, "file"), "x");
  const bad = await runCli(["serve", join(base, "file"), "--port", String(freePort())]);
  assertEquals(bad.code, 1);
  assertEquals(bad.stderr.trim(), `ferry: ${join(base, "file")} is not a directory`);
  assert(!bad.stderr.includes("    at "), "no stack trace");
});
