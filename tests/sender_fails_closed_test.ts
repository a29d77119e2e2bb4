/**
 * The sender distrusts whatever answers it: a receiver that merely claims to
 * be open never gets a byte of a file's name or data from a sender that has
 * a code, and text from an unauthenticated peer never reaches the terminal.
 * These run the CLI as `deno task send` does, with the shipped permissions.
 */
import { assert, assertEquals, assertFalse, assertStringIncludes } from "@std/assert";
import { join } from "node:path";
import { FrameType } from "../src/protocol/frame.ts";
import { clearErrorReply, fakeReceiver, openModeReply } from "./_fake_receiver.ts";
import { listTree, runCli, spawnServe, tempDir, TEST_CODE } from "./_harness.ts";
import { shippedPermissions } from "./_permissions.ts";

const SEND = shippedPermissions("send");
const decoder = new TextDecoder();

async function secretFile(base: string): Promise<string> {
  const path = join(base, "secret-name-7f3a.txt");
  await Deno.writeTextFile(path, "secret-data-9c1e");
  return path;
}

Deno.test("a sender with a code sends nothing but a refusal to a receiver that claims to be open", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const file = await secretFile(base);
  const fake = fakeReceiver(openModeReply());
  try {
    const result = await runCli(["send", file, "--to", `127.0.0.1:${fake.port}`, "--json"], {
      permissions: SEND,
      env: { FERRY_CODE: TEST_CODE },
    });
    assertEquals(result.code, 1, result.stderr);
    const last = JSON.parse(result.stdout.trim().split("\n").at(-1)!);
    assertEquals(last.type, "error");
    assertEquals(last.code, "receiver-open");
    const frames = await fake.frames;
    assertEquals(frames.map((f) => f.type), [FrameType.ERROR], "no KEY_SHARE, no HELLO, no record");
    assertEquals(JSON.parse(decoder.decode(frames[0]!.payload)).code, "code-expected");
    const everything = frames.map((f) => decoder.decode(f.payload)).join("");
    assertFalse(everything.includes("secret-name"), "the file's name never left");
    assertFalse(everything.includes("secret-data"), "the file's data never left");
  } finally {
    fake.close();
  }
});

Deno.test("a sender with a code refuses a real 'serve --open' and says how to send to it", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const file = await secretFile(base);
  const inbox = join(base, "inbox");
  const serve = await spawnServe(inbox, ["--open", "--no-discovery"]);
  try {
    const withCode = await runCli(["send", file, "--to", `127.0.0.1:${serve.port}`], {
      permissions: SEND,
      env: { FERRY_CODE: TEST_CODE },
    });
    assertEquals(withCode.code, 1, withCode.stderr);
    assertStringIncludes(withCode.stderr, "asks for no code");
    assertStringIncludes(withCode.stderr, "give no code");
    assertEquals(await listTree(inbox), [], "nothing arrived");
    // Without a code, the same send goes through (and is told it is open).
    const without = await runCli(["send", file, "--to", `127.0.0.1:${serve.port}`], {
      permissions: SEND,
      env: { FERRY_CODE: "" },
    });
    assertEquals(without.code, 0, without.stderr);
    assertEquals(await listTree(inbox), ["secret-name-7f3a.txt"]);
  } finally {
    await serve.stop();
  }
});

Deno.test("a plain ERROR before the key exchange shows only its code, never the peer's text", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const file = await secretFile(base);
  const hostile = "\x1b]0;owned\x07\x1b[2J\x1b[32mtransfer complete\x1b[0m\u202e\x9b2J";
  for (
    const [code, shown] of [["locked-out", "(locked-out)"], ["busy\x1b[2J", "(unknown)"]] as const
  ) {
    const fake = fakeReceiver(clearErrorReply(code, hostile));
    try {
      const result = await runCli(
        ["send", file, "--to", `127.0.0.1:${fake.port}`, "--retries", "0"],
        { permissions: SEND },
      );
      assertEquals(result.code, 1, result.stderr);
      const out = result.stdout + result.stderr;
      assertStringIncludes(result.stderr, shown);
      for (const bad of ["\x1b", "\x07", "\x9b", "\u202e", "owned", "transfer complete"]) {
        assertFalse(out.includes(bad), `${JSON.stringify(bad)} reached the terminal: ${out}`);
      }
    } finally {
      fake.close();
      await fake.frames.catch(() => {});
    }
  }
});

Deno.test("--plaintext with a code is a usage error, from --code or FERRY_CODE", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const file = await secretFile(base);
  for (
    const [args, env] of [
      [["--code", TEST_CODE], { FERRY_CODE: "" }],
      [[], { FERRY_CODE: TEST_CODE }],
    ] as const
  ) {
    const result = await runCli(
      ["send", file, "--to", "127.0.0.1:9", "--plaintext", ...args],
      { permissions: SEND, env },
    );
    assertEquals(result.code, 2, result.stderr);
    assertStringIncludes(result.stderr, "--plaintext");
    assertStringIncludes(result.stderr, "cannot be used with a code");
  }
});

Deno.test("send --code works and warns that the process list shows it", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const file = await secretFile(base);
  const inbox = join(base, "inbox");
  const serve = await spawnServe(inbox, ["--no-discovery"]);
  try {
    const result = await runCli(
      ["send", file, "--to", `127.0.0.1:${serve.port}`, "--code", TEST_CODE],
      { permissions: SEND, env: { FERRY_CODE: "" } },
    );
    assertEquals(result.code, 0, result.stderr);
    assertStringIncludes(result.stderr, "process list");
    assert(!result.stdout.includes(TEST_CODE) && !result.stderr.includes(TEST_CODE));
  } finally {
    await serve.stop();
  }
});
