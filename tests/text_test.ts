/**
 * `ferry send --text`, end to end through the CLI: a short text is delivered as a message,
 * printed escaped by the receiver and carried whole in its JSON, never written to DIR; the
 * sender reports it delivered only once the receiver acknowledged it. A text too long is a
 * usage error; a receiver without the "text" feature is refused before anything is sent.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { FrameType } from "../src/protocol/frame.ts";
import { encodeFileEnd } from "../src/protocol/frame.ts";
import { MAX_TEXT_BYTES } from "../src/protocol/limits.ts";
import {
  listTree,
  RawClient,
  runCli,
  sha256,
  spawnCli,
  spawnServe,
  tempDir,
  waitFor,
} from "./_harness.ts";
import { fakeWelcomer } from "./_fake_receiver.ts";

type Json = Record<string, unknown> & { type: string };

function objects(stdout: string): Json[] {
  return stdout.split("\n").filter((line) => line !== "").map((line) => JSON.parse(line));
}

/** A text with controls, an escape sequence that would clear the screen, bidi, and two lines. */
const HOSTILE = "the wifi password is \x1b[2J\x1b[31mred\x07\r\u202eevil\nsecond line\ttab";

Deno.test("send --text: the receiver prints it escaped, writes nothing, the sender exits 0", async () => {
  await using base = await tempDir("ferry-text-");
  const dir = base.join("in");
  const serve = await spawnServe(dir, ["--no-discovery", "--on-conflict", "fail"]);
  try {
    const before = await listTree(dir, { includeStaging: true });
    const sent = await runCli(["send", "--text", HOSTILE, "--to", `127.0.0.1:${serve.port}`]);
    assertEquals(sent.code, 0, sent.stderr);
    assertStringIncludes(sent.stdout, "ferry: sent a text to 127.0.0.1:");
    // Again: --on-conflict (fail) does not apply to a text.
    const again = await runCli(["send", "--text", HOSTILE, "--to", `127.0.0.1:${serve.port}`]);
    assertEquals(again.code, 0, again.stderr);
    await waitFor(() => serve.output(), () => serve.stdout().split("] text from").length === 3);
    const out = serve.stdout();
    assert(!out.includes("\x1b") && !out.includes("\x07") && !out.includes("\u202e"), out);
    assert(!out.includes("\r"), "no carriage return that could overwrite a line");
    assertStringIncludes(
      out,
      "  the wifi password is \\u{1b}[2J\\u{1b}[31mred\\u{7}\\u{d}\\u{202e}evil\n" +
        "  second line\\u{9}tab\n",
    );
    assertStringIncludes(out, "received a text from 127.0.0.1:");
    assertEquals(await listTree(dir, { includeStaging: true }), before, "nothing written to DIR");
  } finally {
    await serve.stop();
  }
});

Deno.test("send --text: serve --json and send --json carry the text and its delivery", async () => {
  await using base = await tempDir("ferry-text-");
  const dir = base.join("in");
  const serve = await spawnServe(dir, ["--no-discovery", "--json"], {
    ready: (out) => out.includes('"type":"start"'),
  });
  try {
    const sent = await runCli([
      "send",
      "--text",
      HOSTILE,
      "--to",
      `127.0.0.1:${serve.port}`,
      "--json",
    ]);
    assertEquals(sent.code, 0, sent.stderr);
    const sender = objects(sent.stdout);
    const bytes = new TextEncoder().encode(HOSTILE).length;
    assertEquals(sender.find((o) => o.type === "text-done"), { type: "text-done", bytes });
    const summary = sender.find((o) => o.type === "summary")!;
    assertEquals([summary.texts, summary.files, summary.failed, summary.ok], [1, 0, 0, true]);
    await waitFor(
      () => serve.output(),
      () => objects(serve.stdout()).some((o) => o.type === "summary"),
    );
    const receiver = objects(serve.stdout());
    assertEquals(receiver.find((o) => o.type === "text"), {
      type: "text",
      session: 1,
      text: HOSTILE,
    });
    assert(!serve.stdout().includes("\x1b"), "JSON escapes the controls");
    assertEquals(receiver.find((o) => o.type === "summary")!.texts, 1);
  } finally {
    await serve.stop();
  }
});

Deno.test("send --text: too long, empty, or with PATH is a usage error", async () => {
  const long = await runCli([
    "send",
    "--text",
    "é".repeat(MAX_TEXT_BYTES / 2 + 1),
    "--to",
    "127.0.0.1:1",
  ]);
  assertEquals(long.code, 2);
  assertStringIncludes(long.stderr, "at most 65536 bytes (64 KiB) of UTF-8");
  // Exactly the limit is fine as far as the command line goes (nothing listens there).
  const exact = await runCli(["send", "--text", "x".repeat(MAX_TEXT_BYTES), "--to", "127.0.0.1:1"]);
  assert(exact.code !== 2, exact.stderr);
  const empty = await runCli(["send", "--text", "", "--to", "127.0.0.1:1"]);
  assertEquals(empty.code, 2);
  const both = await runCli(["send", "a.txt", "--text", "hi", "--to", "127.0.0.1:1"]);
  assertEquals(both.code, 2);
  assertStringIncludes(both.stderr, "--text sends a text instead of files");
});

Deno.test("send --text: a receiver without the text feature is refused before anything is sent", async () => {
  const fake = fakeWelcomer({
    software: "ferry/0.0.9",
    digest: "sha256",
    features: ["resume"],
    limits: { maxBatchEntries: 4096, maxFrame: 1048576, maxPathBytes: 4096 },
  });
  try {
    const sent = await runCli(["send", "--text", "secret", "--to", `127.0.0.1:${fake.port}`]);
    assertEquals(sent.code, 1);
    assertEquals(
      sent.stderr.split("\n")[0],
      `ferry: 127.0.0.1:${fake.port} cannot take a text (an older ferry, without the "text" ` +
        "feature); nothing was sent",
    );
    const frames = await fake.frames;
    assertEquals(frames.map((f) => f.type), [FrameType.HELLO], "no ANNOUNCE, no data");
    const hello = JSON.parse(new TextDecoder().decode(frames[0]!.payload));
    assertEquals(hello.features, ["resume", "sync", "text", "listing"]);
    assertEquals(hello.host, Deno.hostname());
  } finally {
    fake.close();
  }
});

Deno.test("send --text with serve --ask: the question says a text is coming", async () => {
  await using base = await tempDir("ferry-text-");
  const dir = base.join("in");
  const serve = await spawnServe(dir, ["--no-discovery", "--json", "--ask"], {
    stdin: "piped",
    ready: (out) => out.includes('"type":"start"'),
  });
  const writer = serve.child.stdin.getWriter();
  try {
    const send = spawnCli(["send", "--text", "hello", "--to", `127.0.0.1:${serve.port}`]);
    await waitFor(() => serve.output(), () => serve.stdout().includes('"type":"ask"'));
    const ask = objects(serve.stdout()).find((o) => o.type === "ask")!;
    assertEquals([ask.text, ask.files, ask.names], [5, 0, []]);
    await writer.write(new TextEncoder().encode(`{"session":${ask.session},"accept":false}\n`));
    const result = await send.done();
    assertEquals(result.code, 1);
    assertStringIncludes(result.stderr, "declined by the receiver");
    assert(!objects(serve.stdout()).some((o) => o.type === "text"), "a declined text is not shown");
  } finally {
    await writer.close().catch(() => {});
    await serve.stop();
  }
});

Deno.test("a text is acknowledged only whole: a damaged one is not shown, and one without the feature is refused", async () => {
  await using base = await tempDir("ferry-text-");
  const dir = base.join("in");
  const serve = await spawnServe(dir, ["--no-discovery", "--json"], {
    ready: (out) => out.includes('"type":"start"'),
  });
  try {
    const data = new TextEncoder().encode("hello");
    // A sender that named "text": its text arrives with a wrong digest.
    const client = await RawClient.connect(serve.port);
    try {
      assert(await client.channel());
      await client.json(FrameType.HELLO, {
        software: "raw",
        digests: ["sha256"],
        features: ["text"],
      });
      assertEquals((await client.next())?.type, FrameType.WELCOME);
      await client.json(FrameType.ANNOUNCE, {
        batch: 0,
        entries: [{ id: 0, kind: "text", size: 5 }],
      });
      const plan = await client.next();
      assertEquals(plan?.json, { batch: 0, decisions: [{ id: 0, action: "accept" }] });
      await client.send(FrameType.DATA, data);
      const wrong = sha256(new TextEncoder().encode("hellO"));
      await client.send(FrameType.FILE_END, encodeFileEnd({ id: 0, length: 5, digest: wrong }));
      // The same text whole, as its resend.
      await client.json(FrameType.ANNOUNCE, {
        batch: 1,
        entries: [{ id: 1, kind: "text", size: 5 }],
      });
      const ack = await client.next();
      assertEquals((ack?.json as { acks: unknown[] }).acks, [
        {
          id: 0,
          ok: false,
          reason: "digest mismatch: the data was altered in transit",
          retry: true,
        },
      ]);
      assertEquals((await client.next())?.type, FrameType.PLAN);
      await client.send(FrameType.DATA, data);
      await client.send(
        FrameType.FILE_END,
        encodeFileEnd({ id: 1, length: 5, digest: sha256(data) }),
      );
      await client.send(FrameType.DONE, new Uint8Array(0));
      const rest = await client.drain();
      assertEquals(rest.map((f) => f.type), [FrameType.ACK, FrameType.BYE]);
      assertEquals((rest[0]!.json as { acks: unknown[] }).acks, [{ id: 1, ok: true }]);
    } finally {
      client.close();
    }
    // A sender that did not name "text": its text entry is refused, that entry alone.
    const old = await RawClient.connect(serve.port);
    try {
      assert(await old.channel());
      await old.json(FrameType.HELLO, { software: "raw", digests: ["sha256"], features: [] });
      assertEquals((await old.next())?.type, FrameType.WELCOME);
      await old.json(FrameType.ANNOUNCE, { batch: 0, entries: [{ id: 0, kind: "text", size: 5 }] });
      const plan = await old.next();
      assertEquals(
        (plan?.json as { decisions: { action: string }[] }).decisions[0]!.action,
        "refuse",
      );
    } finally {
      old.close();
    }
    await waitFor(
      () => serve.output(),
      () => objects(serve.stdout()).filter((o) => o.type === "summary").length === 2,
    );
    const texts = objects(serve.stdout()).filter((o) => o.type === "text");
    assertEquals(texts, [{ type: "text", session: 1, text: "hello" }], "shown once, whole");
    assertEquals(await listTree(dir), []);
  } finally {
    await serve.stop();
  }
});
