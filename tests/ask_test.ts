/**
 * `ferry serve --ask`, end to end through the CLI: the person receiving accepts or declines
 * each session before anything of it is written, on a terminal (tmux) or through `--json`
 * (an `ask` object out, a line of JSON in). A decline, a timeout or a malformed answer leaves
 * DIR exactly as it was, and the sender says "declined by the receiver" and exits 1.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { join } from "node:path";
import { FrameType } from "../src/protocol/frame.ts";
import {
  freePort,
  listTree,
  RawClient,
  runCli,
  spawnCli,
  spawnServe,
  tempDir,
  TEST_CODE,
  waitFor,
  writeTree,
} from "./_harness.ts";
import { denoArgs } from "./_cli.ts";
import { NO_TMUX, shQuote, Terminal } from "./_terminal.ts";

type Json = Record<string, unknown> & { type: string };

/** The JSON objects printed so far. */
function objects(stdout: string): Json[] {
  return stdout.split("\n").filter((line) => line !== "").map((line) => JSON.parse(line));
}

/** `serve DIR --ask --json EXTRA...`, with standard input open for the answers. */
async function askingServer(dir: string, extra: string[] = []) {
  const serve = await spawnServe(dir, ["--ask", "--json", "--no-discovery", ...extra], {
    stdin: "piped",
    ready: (out) => out.includes('"type":"start"'),
  });
  const writer = serve.child.stdin.getWriter();
  return {
    serve,
    /** Writes one line to serve's standard input. */
    answer: async (line: string) => await writer.write(new TextEncoder().encode(`${line}\n`)),
    /** Ends serve's standard input. */
    endInput: async () => await writer.close(),
    /** Waits for the `n`th (from 1) `ask` object. */
    asked: async (n = 1): Promise<Json> => {
      await waitFor(
        () => `ask #${n}:\n${serve.output()}`,
        () => objects(serve.stdout()).filter((o) => o.type === "ask").length >= n,
        30_000,
      );
      return objects(serve.stdout()).filter((o) => o.type === "ask")[n - 1]!;
    },
    async [Symbol.asyncDispose]() {
      await writer.close().catch(() => {});
      await serve.stop();
    },
  };
}

/** A folder to send: files in nested folders, so a decline that made folders would show. */
async function source(base: string): Promise<string> {
  const photos = join(base, "photos");
  await writeTree(photos, { "a.jpg": "AAAA", "deep/b.jpg": "BB", "deep/deeper/c.txt": "C" });
  return photos;
}

Deno.test("serve --ask --json: an accepted session is stored; the question says who and what", async () => {
  await using base = await tempDir("ferry-ask-");
  const photos = await source(base.path);
  const dir = base.join("in");
  await using srv = await askingServer(dir);
  const send = spawnCli(["send", photos, "--to", `127.0.0.1:${srv.serve.port}`]);
  const ask = await srv.asked();
  assertEquals(ask.session, 1);
  assertMatch(String(ask.peer), /^127\.0\.0\.1:\d+$/);
  assertEquals(ask.host, Deno.hostname(), "the sender's host name, as it gave it");
  assertEquals(ask.files, 3);
  assertEquals(ask.entries, 6);
  assertEquals((ask.names as string[]).length, 5, "the first few names");
  assertStringIncludes(String((ask.names as string[])[0]), "photos/");
  assertEquals(ask.text, null);
  assertEquals(ask.timeout, 45, "the default time to answer");
  await srv.answer(JSON.stringify({ session: 1, accept: true }));
  const result = await send.done();
  assertEquals(result.code, 0, result.stderr);
  assertEquals(await Deno.readTextFile(join(dir, "photos/deep/deeper/c.txt")), "C");
  const answered = objects(srv.serve.stdout()).find((o) => o.type === "answered");
  assertEquals(answered, { type: "answered", session: 1, accept: true, by: "person" });
});

/** Runs a session that is not accepted (how: `settle`); checks DIR is untouched and the sender's words. */
async function notAccepted(
  settle: (srv: Awaited<ReturnType<typeof askingServer>>) => Promise<void>,
  extra: string[] = [],
): Promise<Json> {
  await using base = await tempDir("ferry-ask-");
  const photos = await source(base.path);
  const dir = base.join("in");
  await using srv = await askingServer(dir, extra);
  const before = await listTree(dir, { includeStaging: true });
  const send = spawnCli(["send", photos, "--to", `127.0.0.1:${srv.serve.port}`]);
  await srv.asked();
  await settle(srv);
  const result = await send.done();
  assertEquals(result.code, 1, result.stderr);
  // (The note that it waits for an answer comes only after 3 s, on a slow machine.)
  assertEquals(
    result.stderr.split("\n").filter((line) => !line.includes("to accept (it may be asking")),
    [`ferry: declined by the receiver at 127.0.0.1:${srv.serve.port}`, ""],
    "one clear line",
  );
  assertEquals(result.stdout, "");
  assertEquals(
    await listTree(dir, { includeStaging: true }),
    before,
    "nothing written: no folder, no file, no partial, no transfer marker",
  );
  await waitFor(
    () => srv.serve.output(),
    () => objects(srv.serve.stdout()).some((o) => o.type === "summary"),
  );
  const summary = objects(srv.serve.stdout()).find((o) => o.type === "summary")!;
  assertEquals(summary.cause, "declined");
  assertEquals(summary.files, 0);
  return objects(srv.serve.stdout()).find((o) => o.type === "answered")!;
}

Deno.test("serve --ask --json: declined, nothing is written and the sender exits 1", async () => {
  const answered = await notAccepted((srv) =>
    srv.answer(JSON.stringify({ session: 1, accept: false }))
  );
  assertEquals(answered, { type: "answered", session: 1, accept: false, by: "person" });
});

Deno.test("serve --ask --json: a malformed answer is refused, and declines", async () => {
  for (
    const [line, why] of [
      ["yes please", "not JSON"],
      ["[true]", "not a JSON object"],
      [JSON.stringify({ session: 2, accept: true }), "not for session 1"],
      [JSON.stringify({ session: 1, accept: "yes" }), "accept is not true or false"],
    ]
  ) {
    const answered = await notAccepted((srv) => srv.answer(line!));
    assertEquals(answered.accept, false, line);
    assertEquals(answered.by, "refused", line);
    assertStringIncludes(String(answered.reason), why!);
  }
});

Deno.test("serve --ask --json: no answer within --ask-timeout declines", async () => {
  const answered = await notAccepted(() => Promise.resolve(), ["--ask-timeout", "1"]);
  assertEquals(answered.by, "timeout");
  assertStringIncludes(String(answered.reason), "no answer within 1 s");
});

Deno.test("serve --ask --json: the end of standard input declines", async () => {
  const answered = await notAccepted((srv) => srv.endInput());
  assertEquals(answered.by, "closed");
});

Deno.test("serve --ask: the sender waits for the person longer than its --timeout", async () => {
  await using base = await tempDir("ferry-ask-");
  const photos = await source(base.path);
  const dir = base.join("in");
  await using srv = await askingServer(dir, ["--timeout", "2"]);
  const send = spawnCli(["send", photos, "--to", `127.0.0.1:${srv.serve.port}`, "--timeout", "2"]);
  await srv.asked();
  // Longer than both sides' inactivity timeouts: neither gives up while the person decides.
  await new Promise((r) => setTimeout(r, 4500));
  await srv.answer(JSON.stringify({ session: 1, accept: true }));
  const result = await send.done();
  assertEquals(result.code, 0, result.stderr);
  assertEquals(await Deno.readTextFile(join(dir, "photos/a.jpg")), "AAAA");
  assertStringIncludes(
    result.stderr,
    `ferry: waiting for 127.0.0.1:${srv.serve.port} to accept (it may be asking the person there)`,
    "the sender says why nothing moves",
  );
});

Deno.test("serve --ask: questions of sessions at once are put one at a time", async () => {
  await using base = await tempDir("ferry-ask-");
  const photos = await source(base.path);
  const dir = base.join("in");
  await using srv = await askingServer(dir);
  const to = `127.0.0.1:${srv.serve.port}`;
  const one = spawnCli(["send", photos, "--to", to]);
  const first = await srv.asked(1);
  const two = spawnCli(["send", join(photos, "a.jpg"), "--to", to]);
  await waitFor(() => srv.serve.output(), () => {
    return objects(srv.serve.stdout()).filter((o) => o.type === "session-start").length === 2;
  });
  await new Promise((r) => setTimeout(r, 1500));
  assertEquals(
    objects(srv.serve.stdout()).filter((o) => o.type === "ask").length,
    1,
    "the second question waits for the first",
  );
  await srv.answer(JSON.stringify({ session: first.session, accept: false }));
  const second = await srv.asked(2);
  assert(second.session !== first.session);
  assertEquals(second.names, ["a.jpg"]);
  await srv.answer(JSON.stringify({ session: second.session, accept: true }));
  assertEquals((await one.done()).code, 1);
  assertEquals((await two.done()).code, 0);
  assertEquals(await listTree(dir), ["a.jpg"]);
});

Deno.test("serve --ask: the sender's host name is shown escaped; an over-long one is refused", async () => {
  await using base = await tempDir("ferry-ask-");
  const dir = base.join("in");
  await using srv = await askingServer(dir);
  const hostile = "\x1b]0;pwned\x07\x1b[2J\u202e" + "h".repeat(240);
  const client = await RawClient.connect(srv.serve.port);
  try {
    assert(await client.channel());
    await client.json(FrameType.HELLO, {
      software: "raw-test",
      digests: ["sha256"],
      features: [],
      host: hostile,
    });
    assertEquals((await client.next())?.type, FrameType.WELCOME);
    await client.json(FrameType.ANNOUNCE, {
      batch: 0,
      entries: [{ id: 0, path: "\x1b[31mred.txt", kind: "file", size: 1, mtime: 0, mode: 420 }],
    });
    const ask = await srv.asked();
    assertEquals(ask.host, hostile, "JSON carries it as given (escaped as JSON)");
    assert(!srv.serve.stdout().includes("\x1b"), "no raw escape in the output");
  } finally {
    client.close();
  }
  // Over MAX_HOST_UNITS (255): a malformed HELLO, refused before anything is asked.
  const long = await RawClient.connect(srv.serve.port);
  try {
    assert(await long.channel());
    await long.json(FrameType.HELLO, {
      software: "raw-test",
      digests: ["sha256"],
      host: "x".repeat(256),
    });
    const reply = await long.next();
    assertEquals(reply?.type, FrameType.ERROR);
    assertEquals((reply?.json as { code: string }).code, "bad-message");
  } finally {
    long.close();
  }
});

Deno.test("serve --ask is a usage error off a terminal without --json", async () => {
  await using base = await tempDir("ferry-ask-");
  const result = await runCli(["serve", base.join("in"), "--ask"]);
  assertEquals(result.code, 2);
  assertStringIncludes(result.stderr, "--ask needs a terminal");
  const json = await runCli(["serve", base.join("in"), "--ask", "--json", "--ask-timeout", "301"]);
  assertEquals(json.code, 2);
  assertStringIncludes(json.stdout, "--ask-timeout can be at most 300 seconds");
  const alone = await runCli(["serve", base.join("in"), "--ask-timeout", "10"]);
  assertEquals(alone.code, 2);
  assertStringIncludes(alone.stderr, "--ask-timeout goes with --ask");
});

/** `serve DIR --ask` in a terminal of its own (tmux); the sender runs outside it. */
async function askInTerminal(
  term: Terminal,
  dir: string,
  port: number,
  extra: string[] = [],
): Promise<void> {
  const args = denoArgs(["serve", dir, "--ask", "--port", String(port), "--host", "127.0.0.1"])
    .concat("--no-discovery", ...extra);
  await term.start(
    `FERRY_CODE=${shQuote(TEST_CODE)} ${[Deno.execPath(), ...args].map(shQuote).join(" ")}`,
  );
  await term.watch((s) => s.includes("press Ctrl+C to stop"));
}

Deno.test({
  name: "serve --ask on a terminal: y accepts, n declines; nothing is asked twice in a session",
  ignore: NO_TMUX,
  async fn() {
    await using base = await tempDir("ferry-ask-");
    const photos = await source(base.path);
    const dir = base.join("in");
    await using term = new Terminal();
    const port = freePort();
    await askInTerminal(term, dir, port);
    const to = `127.0.0.1:${port}`;

    const declined = spawnCli(["send", photos, "--to", to]);
    let screens = await term.watch((s) => s.includes("Accept? [y/N]"));
    let screen = screens.at(-1)!;
    assert(!/B\/s.*Accept\?/s.test(screen), "no progress line drawn over the question");
    assertMatch(screen, /\[1\] 127\.0\.0\.1:\d+ \(host "[^"]+"\) wants to send/);
    assertStringIncludes(screen, "photos/");
    await term.keys("n", "Enter");
    screen = (await term.watch((s) => s.includes("[1] declined"))).at(-1)!;
    assertStringIncludes(
      screen,
      "[y/N] (declines in 45 s without an answer): n\nferry: [1] declined",
    );
    const no = await declined.done();
    assertEquals(no.code, 1);
    assertStringIncludes(no.stderr, "declined by the receiver");
    assertEquals(await listTree(dir), []);

    // More than one batch (a batch is cut at 512 entries): asked once, at the first.
    const many: Record<string, string> = {};
    for (let i = 0; i < 700; i++) many[`f${i}.txt`] = String(i);
    await writeTree(base.join("many"), many);
    const accepted = spawnCli(["send", base.join("many"), "--to", to]);
    screens = await term.watch((s) => s.includes("ferry: [2]") && s.includes("Accept? [y/N]"));
    screen = screens.at(-1)!;
    assertStringIncludes(screen, "many/f");
    await term.keys("y", "Enter");
    const yes = await accepted.done();
    assertEquals(yes.code, 0, yes.stderr);
    assertEquals((await listTree(join(dir, "many"))).length, 700);
    screen = await term.screen();
    assertEquals(screen.split("Accept?").length - 1, 2, "two questions in all");
  },
});

Deno.test({
  name: "serve --ask on a terminal: a hostile host name and names are shown escaped and cut",
  ignore: NO_TMUX,
  async fn() {
    await using base = await tempDir("ferry-ask-");
    const dir = base.join("in");
    await using term = new Terminal();
    const port = freePort();
    await askInTerminal(term, dir, port, ["--ask-timeout", "2"]);
    const client = await RawClient.connect(port);
    try {
      assert(await client.channel());
      await client.json(FrameType.HELLO, {
        software: "raw-test",
        digests: ["sha256"],
        host: "\x1b[2J\x1b[HPWNED\u202e" + "h".repeat(240),
      });
      assertEquals((await client.next())?.type, FrameType.WELCOME);
      await client.json(FrameType.ANNOUNCE, {
        batch: 0,
        entries: [{ id: 0, path: "\x1b[31mred.txt", kind: "file", size: 1, mtime: 0, mode: 420 }],
      });
      const screens = await term.watch((s) => s.includes("declined: no answer within 2 s"));
      const screen = screens.at(-1)!;
      assertStringIncludes(screen, "ferry: receiving into", "the screen was not cleared");
      assertStringIncludes(screen, '(host "\\u{1b}[2J\\u{1b}[HPWNED\\u{202e}hhh');
      assertMatch(screen, /h…"\)/, "cut to 64 characters");
      assert(!screen.includes("h".repeat(100)), "not all 240");
      assertStringIncludes(screen, "\\u{1b}[31mred.txt");
      const reply = await client.next();
      assertEquals(reply?.type, FrameType.ERROR);
      assertEquals((reply?.json as { code: string }).code, "declined");
    } finally {
      client.close();
    }
    assertEquals(await listTree(dir), []);
  },
});

Deno.test("serve --ask --on-conflict update: a declined sync leaves the old copy; an accepted one sends only what changed", async () => {
  await using base = await tempDir("ferry-ask-");
  const photos = await source(base.path);
  const dir = base.join("in");
  await using srv = await askingServer(dir, ["--on-conflict", "update"]);
  const to = ["--to", `127.0.0.1:${srv.serve.port}`, "--json"];
  const sendOnce = async (n: number, accept: boolean) => {
    const send = spawnCli(["send", photos, ...to]);
    await srv.asked(n);
    await srv.answer(JSON.stringify({ session: n, accept }));
    return await send.done();
  };
  assertEquals((await sendOnce(1, true)).code, 0);
  const changed = join(photos, "a.jpg");
  await Deno.writeTextFile(changed, "a new picture, longer than before");
  const declined = await sendOnce(2, false);
  assertEquals(declined.code, 1, declined.stderr);
  assertEquals(
    await Deno.readTextFile(join(dir, "photos/a.jpg")),
    "AAAA",
    "declined: old copy kept",
  );
  const accepted = await sendOnce(3, true);
  assertEquals(accepted.code, 0, accepted.stderr);
  const summary = objects(accepted.stdout).find((o) => o.type === "summary")!;
  assertEquals([summary.new, summary.updated, summary.unchanged], [0, 1, 2]);
  assertEquals(
    await Deno.readTextFile(join(dir, "photos/a.jpg")),
    "a new picture, longer than before",
  );
  // A text to the same receiver is asked about, shown, and touches nothing under update.
  const before = await listTree(dir, { includeStaging: true });
  const text = spawnCli(["send", "--text", "wifi: \x1b[31mred", ...to]);
  const ask = await srv.asked(4);
  assertEquals(ask.text, 14);
  await srv.answer(JSON.stringify({ session: 4, accept: true }));
  assertEquals((await text.done()).code, 0);
  await waitFor(
    () => srv.serve.output(),
    () => objects(srv.serve.stdout()).some((o) => o.type === "text"),
  );
  assertEquals(
    objects(srv.serve.stdout()).find((o) => o.type === "text")?.text,
    "wifi: \x1b[31mred",
  );
  assertEquals(await listTree(dir, { includeStaging: true }), before);
});

Deno.test("serve --ask --json: a sender that leaves while asked about withdraws its question at once", async () => {
  await using base = await tempDir("ferry-ask-");
  const photos = await source(base.path);
  const dir = base.join("in");
  await using srv = await askingServer(dir, ["--ask-timeout", "120"]);
  const before = await listTree(dir, { includeStaging: true });
  const send = spawnCli(["send", photos, "--to", `127.0.0.1:${srv.serve.port}`]);
  await srv.asked();
  const askedAt = Date.now();
  send.child.kill("SIGKILL");
  await send.done();
  await waitFor(
    () => srv.serve.output(),
    () => objects(srv.serve.stdout()).some((o) => o.type === "summary"),
    20_000,
  );
  // Long before the 120 s timeout: its slot and its place in the question queue are free again.
  assert(Date.now() - askedAt < 20_000);
  const answered = objects(srv.serve.stdout()).find((o) => o.type === "answered")!;
  assertEquals([answered.accept, answered.by], [false, "withdrawn"]);
  const summary = objects(srv.serve.stdout()).find((o) => o.type === "summary")!;
  assertEquals(summary.cause, "disconnected");
  assertEquals(await listTree(dir, { includeStaging: true }), before, "nothing written");
});
