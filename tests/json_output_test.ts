/**
 * `--json` (docs/JSON.md): the NDJSON of `send` and `serve` parses, every
 * line has a type, the summaries match the tree, errors are objects with
 * stable codes. (What --exclude and the staging folder leave out, seen
 * through the JSON stream, is in send_exclusion_test.ts.)
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { parseTarget } from "../src/cli/args.ts";
import { compileGlob } from "../src/cli/glob.ts";
import { errorCode } from "../src/cli/error_codes.ts";
import {
  ConnectFailed,
  ConnectionLost,
  DiscoveryError,
  FerryError,
  UsageError,
} from "../src/errors.ts";
import { jsonLine } from "../src/cli/output.ts";
import { resolveSources } from "../src/client/walk.ts";
import { parseTargets } from "../src/discovery/finder.ts";
import { ProtocolError } from "../src/protocol/errors.ts";
import { Inbox } from "../src/server/inbox.ts";
import { connect, connectFailure, listen } from "../src/transport/tcp.ts";
import { type Json, parseNdjson, SEND_TYPES, SERVE_TYPES } from "./_ndjson.ts";
import {
  freePort,
  randomBytes,
  runCli,
  snapshot,
  spawnServe,
  tempDir,
  type TreeSpec,
  writeTree,
} from "./_harness.ts";

/** A tree with a large file, an empty one, nested folders and an empty folder. */
function sampleTree(): TreeSpec {
  return {
    "big.bin": randomBytes(12_000_000),
    "zero.bin": new Uint8Array(0),
    "sub/a.txt": "a\n",
    "sub/deeper/b.bin": randomBytes(70_000),
    "empty": { dir: true },
  };
}

Deno.test("ferry send --json prints only NDJSON, and its summary matches the tree", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const src = join(base, "tree");
  const inbox = join(base, "inbox");
  const tree = await writeTree(src, sampleTree());
  const serve = await spawnServe(inbox);
  try {
    const started = performance.now();
    const sent = await runCli(["send", src, "--to", `127.0.0.1:${serve.port}`, "--json"]);
    const seconds = (performance.now() - started) / 1000;
    assertEquals(sent.code, 0, sent.stderr);
    assertEquals(sent.stderr, "");
    const objects = parseNdjson(sent.stdout, SEND_TYPES);
    assertEquals(objects[0]?.type, "start");
    assertEquals(objects[0]?.to, `127.0.0.1:${serve.port}`);
    assertEquals(objects[0]?.server, null);
    assertEquals(objects[1]?.type, "connected");
    const summary = objects.at(-1)!;
    assertEquals(summary.type, "summary");
    assertEquals(objects.filter((o) => o.type === "summary").length, 1);
    assertEquals(summary.files, tree.files);
    assertEquals(summary.bytes, tree.bytes);
    assertEquals(summary.resumedBytes, 0);
    assertEquals(summary.skipped, 0);
    assertEquals(summary.failed, 0);
    assertEquals(summary.ok, true);
    assertEquals(typeof summary.seconds, "number");
    const done = objects.filter((o) => o.type === "file-done");
    assertEquals(done.map((o) => o.path).sort(), [
      "tree/big.bin",
      "tree/sub/a.txt",
      "tree/sub/deeper/b.bin",
      "tree/zero.bin",
    ]);
    for (const file of done) {
      const start = objects.findIndex((o) => o.type === "file-start" && o.path === file.path);
      assert(
        start >= 0 && start < objects.indexOf(file),
        `file-start before file-done: ${file.path}`,
      );
    }
    assertEquals(done.reduce((n, o) => n + (o.bytes as number), 0), tree.bytes);
    const progress = objects.filter((o) => o.type === "progress");
    assert(progress.length <= Math.ceil(seconds * 10) + 1, `${progress.length} in ${seconds} s`);
    for (const p of progress) {
      assertEquals(typeof p.bytes, "number");
      assert((p.bytes as number) <= tree.bytes);
      assert(p.totalFiles === null || p.totalFiles === tree.files, JSON.stringify(p));
      assert(p.totalBytes === null || p.totalBytes === tree.bytes, JSON.stringify(p));
    }
    assertEquals(
      (await snapshot(join(inbox, "tree")))["big.bin"],
      (await snapshot(src))["big.bin"],
    );
  } finally {
    await serve.stop();
  }
});

Deno.test("ferry send reports the digest in connected: xxh128 by default, sha256 with --digest sha256", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const serve = await spawnServe(join(base, "inbox"));
  try {
    for (
      const [name, extra, digest] of [["f.bin", [], "xxh128"], [
        "g.bin",
        ["--digest", "sha256"],
        "sha256",
      ], ["h.bin", ["--digest", "xxh128"], "xxh128"]] as const
    ) {
      const data = randomBytes(2_500_000);
      await Deno.writeFile(join(base, name), data);
      const to = `127.0.0.1:${serve.port}`;
      const sent = await runCli(["send", join(base, name), "--to", to, "--json", ...extra]);
      assertEquals(sent.code, 0, sent.stderr);
      const connected = parseNdjson(sent.stdout, SEND_TYPES).find((o) => o.type === "connected");
      assertEquals(connected?.digest, digest);
      assertEquals(await Deno.readFile(join(base, "inbox", name)), data);
    }
  } finally {
    await serve.stop();
  }
});

Deno.test("with --digest sha256 both sides' file-done objects give each file's SHA-256; by default none", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const src = join(base, "tree");
  await writeTree(src, sampleTree());
  const serve = await spawnJsonServe(join(base, "inbox"));
  const sha256Of = async (path: string) =>
    createHash("sha256").update(await Deno.readFile(join(base, path))).digest("hex");
  let stopped;
  const sends = [];
  try {
    for (const extra of [["--digest", "sha256"], []]) {
      const to = `127.0.0.1:${serve.port}`;
      const sent = await runCli(["send", src, "--to", to, "--json", ...extra]);
      assertEquals(sent.code, 0, sent.stderr);
      sends.push(parseNdjson(sent.stdout, SEND_TYPES).filter((o) => o.type === "file-done"));
    }
  } finally {
    stopped = await serve.stop();
  }
  const [chosen, byDefault] = sends as [Json[], Json[]];
  assertEquals(chosen.length, 4);
  for (const done of chosen) assertEquals(done.sha256, await sha256Of(done.path as string));
  assertEquals(byDefault.length, 4);
  for (const done of byDefault) assertEquals("sha256" in done, false, JSON.stringify(done));
  const received = parseNdjson(stopped.stdout, SERVE_TYPES).filter((o) => o.type === "file-done");
  const [first, second] = [
    received.filter((o) => o.session === 1),
    received.filter((o) => o.session === 2),
  ];
  assertEquals(first.length, 4);
  for (const done of first) {
    assertEquals(done.sha256, await sha256Of(join("inbox", done.path as string)));
  }
  assertEquals(second.length, 4);
  for (const done of second) assertEquals("sha256" in done, false, JSON.stringify(done));
});

Deno.test("ferry send --json turns errors into one error object with a stable code, exit codes unchanged", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  await Deno.writeTextFile(join(base, "a.txt"), "x");
  const port = freePort();
  for (
    const [args, exit, code, message] of [
      [
        [join(base, "a.txt"), "--to", `127.0.0.1:${port}`],
        1,
        "connect-refused",
        /connection refused/,
      ],
      [[join(base, "nope.txt"), "--to", "127.0.0.1"], 1, "io", /no such file or directory$/],
      [["--to", "127.0.0.1"], 2, "usage", /^send needs at least one PATH$/],
      [[join(base, "a.txt"), "--bogus"], 2, "usage", /^unknown option '--bogus'$/],
      [[join(base, "a.txt"), "--to", "h:0"], 2, "usage", /^the port in --to must be/],
    ] as const
  ) {
    const result = await runCli(["send", ...args, "--json"]);
    assertEquals(result.code, exit, args.join(" "));
    assertEquals(result.stderr, "", args.join(" "));
    const objects = parseNdjson(result.stdout, SEND_TYPES);
    const error = objects.at(-1)!;
    assertEquals(error.type, "error");
    assertEquals(error.code, code, args.join(" "));
    assertMatch(error.message as string, message);
    assertEquals(objects.filter((o) => o.type === "error").length, 1);
    if (exit === 2) {
      assertEquals(objects.length, 1);
      assertMatch(error.hint as string, /^run 'ferry send --help'$|^e\.g\./);
    }
  }
});

Deno.test("ferry send --json reports a wrong code as the error code wrong-code", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  await Deno.writeTextFile(join(base, "a.txt"), "x");
  const serve = await spawnServe(join(base, "inbox"));
  try {
    const result = await runCli([
      "send",
      join(base, "a.txt"),
      "--to",
      `127.0.0.1:${serve.port}`,
      "--json",
    ], { env: { FERRY_CODE: "9999-not-the-code" } });
    assertEquals(result.code, 1);
    assertEquals(result.stderr, "");
    const objects = parseNdjson(result.stdout, SEND_TYPES);
    assertEquals(objects.map((o) => o.type), ["start", "error"]);
    assertEquals(objects[1]!.code, "wrong-code");
    assertEquals(
      await Deno.stat(join(base, "inbox", "a.txt")).then(() => true, () => false),
      false,
    );
  } finally {
    await serve.stop();
  }
});

Deno.test("errorCode() is the code the error carries; a protocol error is protocol; else internal", () => {
  const cases: [unknown, string][] = [
    [new UsageError("x", "y"), "usage"],
    [new FerryError("wrong-code", "anything"), "wrong-code"],
    [new DiscoveryError("no-server", "x", "y"), "no-server"],
    [new ConnectFailed("unreachable", "x"), "unreachable"],
    [new ConnectionLost("timeout", "x"), "timeout"],
    [new ProtocolError("bad-message", "x"), "protocol"],
    // Deno's own errors, should one reach the top: by their class.
    [new Deno.errors.NotFound("x"), "io"],
    [new Deno.errors.PermissionDenied("x"), "io"],
    [new Deno.errors.AddrInUse("x"), "address-in-use"],
    [new TypeError("a bug"), "internal"],
    ["not even an error", "internal"],
  ];
  for (const [err, code] of cases) assertEquals(errorCode(err), code, String(err));
  // The exit code goes with the code (docs/JSON.md's table).
  assertEquals(new UsageError("x", "y").exitCode, 2);
  assertEquals(new FerryError("interrupted", "x").exitCode, 130);
  assertEquals(new ConnectionLost("refused", "x").exitCode, 1);
});

/** What `run` throws (it must throw). */
async function thrown(run: () => unknown): Promise<unknown> {
  try {
    await run();
  } catch (err) {
    return err;
  }
  throw new Error("it did not throw");
}

Deno.test("errors thrown through ferry's code paths carry their codes and messages", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  // Connecting: a port nobody listens on, and what Deno throws for the other failures.
  const port = freePort();
  const to = { host: "127.0.0.1", port };
  const refused = await thrown(() => connect(to, 5000));
  assert(refused instanceof ConnectFailed);
  assertEquals(errorCode(refused), "connect-refused");
  assertMatch(
    (refused as Error).message,
    /^could not connect to 127\.0\.0\.1:\d+: connection refused \(/,
  );
  const failures: [unknown, boolean, string, RegExp][] = [
    [new Deno.errors.TimedOut("x"), false, "timeout", /: no answer within 15 s \(/],
    [new Error("aborted"), true, "timeout", /: no answer within 15 s \(/],
    // Deno's words for a failed name lookup (it gives no class or code).
    [
      new Error("failed to lookup address information: Name or service not known"),
      false,
      "unknown-host",
      /: unknown host '127\.0\.0\.1'$/,
    ],
    [
      Object.assign(new Error("No route to host (os error 113)"), { code: "EHOSTUNREACH" }),
      false,
      "unreachable",
      /: no route to that host \(is the address right\?\)$/,
    ],
    [new Deno.errors.NetworkUnreachable("x"), false, "unreachable", /: no route to that host/],
    [new Deno.errors.NotCapable("no net"), false, "failed", /^could not connect to .*: no net$/],
  ];
  for (const [cause, aborted, code, message] of failures) {
    const err = connectFailure(cause, to, 15_000, aborted);
    assert(err instanceof ConnectFailed, String(cause));
    assertEquals(errorCode(err), code, String(cause));
    assertMatch((err as Error).message, message);
  }
  const other = new TypeError("not a connection failure");
  assertEquals(connectFailure(other, to, 15_000, false), other);

  // Listening on a port that is taken.
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const err = await thrown(() =>
      listen({ host: "127.0.0.1", port: (taken.addr as Deno.NetAddr).port })
    );
    assertEquals(errorCode(err), "address-in-use");
    assertMatch((err as Error).message, /^port \d+ is already in use on 127\.0\.0\.1; /);
  } finally {
    taken.close();
  }

  // The receiving folder is a file; a source is missing; a source is the root.
  await Deno.writeTextFile(join(base, "file"), "x");
  const notDir = await thrown(() => Inbox.open(join(base, "file")));
  assertEquals(errorCode(notDir), "io");
  assertEquals((notDir as Error).message, `${join(base, "file")} is not a directory`);
  const missing = await thrown(() => resolveSources([join(base, "missing")], "stdin"));
  assertEquals(errorCode(missing), "io");
  assertEquals((missing as Error).message, `${join(base, "missing")}: no such file or directory`);
  const root = await thrown(() => resolveSources(["/"], "stdin"));
  assertEquals(errorCode(root), "failed");
  assertStringIncludes((root as Error).message, "cannot send a file system root");

  // Usage mistakes, wherever they are found.
  assertEquals(errorCode(await thrown(() => parseTarget(""))), "usage");
  assertEquals(errorCode(await thrown(() => compileGlob("["))), "usage");
  assertEquals(errorCode(await thrown(() => parseTargets("not-an-address"))), "usage");
});

Deno.test("jsonLine() escapes control and bidi characters, and the value round-trips", () => {
  const name = "a\u001b[31mb\u009bc\u202ed\u2028e\u0000f";
  const line = jsonLine({ type: "file-done", path: name });
  assert(line.endsWith("\n"));
  assertEquals(line.slice(0, -1).includes("\n"), false);
  assert(
    // deno-lint-ignore no-control-regex
    !/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/.test(line.slice(0, -1)),
  );
  assertEquals(JSON.parse(line).path, name);
});

/** Starts `ferry serve --json`; it is up once its first object (start) is out. */
function spawnJsonServe(dir: string, extra: string[] = []) {
  return spawnServe(dir, ["--json", "--no-discovery", ...extra], {
    ready: (out) => out.includes("\n"),
  });
}

Deno.test("ferry serve --json prints start, each session's objects and summary, then stopped", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const src = join(base, "tree");
  const tree = await writeTree(src, sampleTree());
  const serve = await spawnJsonServe(join(base, "inbox"));
  let stopped;
  try {
    const first = JSON.parse(serve.stdout().split("\n")[0]!);
    assertEquals(first.type, "start");
    assertEquals(first.command, "serve");
    assertEquals(first.port, serve.port);
    // A code from FERRY_CODE is never echoed, not even to the operator's JSON.
    assertEquals(first.code, null);
    assertEquals(first.codeRequired, true);
    assertEquals(first.discoveryPort, null);
    assertEquals(first.addresses, ["127.0.0.1"]);
    assertEquals(first.dir, await Deno.realPath(join(base, "inbox")));
    for (let i = 0; i < 2; i++) {
      const sent = await runCli(["send", src, "--to", `127.0.0.1:${serve.port}`, "--quiet"]);
      assertEquals(sent.code, 0, sent.stderr);
    }
  } finally {
    stopped = await serve.stop();
  }
  assertEquals(stopped.code, 0);
  assertEquals(stopped.stderr, "");
  const objects = parseNdjson(stopped.stdout, SERVE_TYPES);
  assertEquals(objects.at(-1)!.type, "stopped");
  const summaries = objects.filter((o) => o.type === "summary");
  assertEquals(summaries.length, 2);
  for (const summary of summaries) {
    assertEquals(summary.files, tree.files);
    assertEquals(summary.bytes, tree.bytes);
    assertEquals(summary.failed, 0);
    assertEquals(summary.skipped, 0);
    assertEquals(summary.ok, true);
    assertEquals(summary.error, null);
    assertEquals(summary.cause, null);
    assertEquals(summary.already, 0);
    const session = summary.session;
    const done = objects.filter((o) => o.type === "file-done" && o.session === session);
    assertEquals(done.length, tree.files);
    assert(objects.some((o) => o.type === "session-start" && o.session === session));
    // The sender's totals came with its first batch, before any data: every progress has them.
    for (const p of objects.filter((o) => o.type === "progress" && o.session === session)) {
      assertEquals([p.totalFiles, p.totalBytes], [tree.files, tree.bytes]);
    }
  }
  // The second copy was renamed, and says where it went (path and name), and what it was sent as.
  const renamed = objects.find((o) => o.type === "file-done" && o.name === "tree/big (1).bin");
  assertEquals(renamed?.path, "tree/big (1).bin");
  assertEquals(renamed?.announced, "tree/big.bin");
});

Deno.test("ferry serve --json reports a failure to start as an error object", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  await Deno.writeTextFile(join(base, "file"), "x");
  const result = await runCli([
    "serve",
    join(base, "file"),
    "--port",
    String(freePort()),
    "--json",
  ]);
  assertEquals(result.code, 1);
  assertEquals(result.stderr, "");
  const [error] = parseNdjson(result.stdout, SERVE_TYPES);
  assertEquals(error, {
    type: "error",
    code: "io",
    message: `${join(base, "file")} is not a directory`,
  });
});
