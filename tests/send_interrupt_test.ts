/**
 * When a send is interrupted, ferry says what to do: Ctrl+C (SIGINT) in
 * plain and --json modes, a receiver that came back with a new code, a
 * connection that gets no answer (the firewall), and `progress` objects
 * that keep coming on a slow link. (The live progress line's reconnecting
 * state and Ctrl+C on a terminal are in progress_tty_test.ts.)
 */
import { assert, assertEquals, assertInstanceOf, assertMatch } from "@std/assert";
import { join } from "node:path";
import { errorCode } from "../src/cli/error_codes.ts";
import { FerryError } from "../src/errors.ts";
import { connect } from "../src/transport/tcp.ts";
import { FaultProxy } from "./fault_proxy.ts";
import {
  freePort,
  randomBytes,
  runCli,
  sendInProcess,
  spawnCli,
  startServer,
  tempDir,
  waitFor,
} from "./_harness.ts";

const INTERRUPTED = "interrupted; run the same command again to resume";

for (const json of [false, true]) {
  Deno.test(`Ctrl+C on ferry send${json ? " --json" : ""} says to run it again, exit 130; again resumes`, async () => {
    await using baseDir = await tempDir();
    const base = baseDir.path;
    const data = randomBytes(8_000_000);
    const file = join(base, "big.bin");
    await Deno.writeFile(file, data);
    const server = await startServer(join(base, "inbox"));
    // A slow link, so that the transfer is under way when Ctrl+C comes.
    const proxy = new FaultProxy(server.port, { bytesPerSecond: 2_000_000 });
    try {
      const extra = json ? ["--json"] : [];
      const running = spawnCli(["send", file, "--to", `127.0.0.1:${proxy.port}`, ...extra]);
      await waitFor("3 MB to go through", () => proxy.forwarded > 3_000_000, 20_000);
      running.child.kill("SIGINT");
      const { code, signal, stdout, stderr } = await running.done();
      assertEquals(signal, null, "ferry handled SIGINT itself");
      assertEquals(code, 130, stderr);
      if (json) {
        assertEquals(stderr, "");
        const lines = stdout.trimEnd().split("\n").map((line) => JSON.parse(line));
        assertEquals(lines.at(-1), { type: "error", code: "interrupted", message: INTERRUPTED });
        assertEquals(lines.filter((o) => o.type === "error").length, 1);
      } else {
        assertEquals(stderr, `ferry: ${INTERRUPTED}\n`);
      }
      // As it says: the same command again sends only what is missing.
      await waitFor(
        "the session's end",
        () => server.events.some((e) => e.type === "session-end"),
        10_000,
      );
      const again = await runCli(["send", file, "--to", `127.0.0.1:${server.port}`]);
      assertEquals(again.code, 0, again.stderr);
      // What is left may be under a megabyte, if the first run got far before Ctrl+C stopped it.
      assertMatch(again.stdout, /^ferry: sent 1 file \([\d.]+ [kM]B, [\d.]+ MB resumed\)/m);
      assertEquals(await Deno.readFile(join(base, "inbox", "big.bin")), data);
    } finally {
      await proxy.close();
      await server.close();
    }
  });
}

Deno.test("a wrong code on reconnecting says the receiver may have restarted with a new code", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const file = join(base, "big.bin");
  await Deno.writeFile(file, randomBytes(6_000_000));
  const port = freePort();
  let server = await startServer(join(base, "inbox"), { port });
  const proxy = new FaultProxy(port, { bytesPerSecond: 2_000_000 });
  try {
    // The first connection: a wrong code is only that, with no hint.
    const first = await sendInProcess(proxy.port, [file], { code: "9999-not-the-code" })
      .then(() => null, (err) => err);
    assertInstanceOf(first, FerryError);
    assertEquals(errorCode(first), "wrong-code");
    assertEquals(first.hint, undefined);
    // Mid-transfer, the receiver stops and comes back with another code.
    const sending = sendInProcess(proxy.port, [file], { retries: 5 }).then(() => null, (e) => e);
    await waitFor("1 MB to go through", () => proxy.forwarded > 1_000_000, 20_000);
    await server.close();
    server = await startServer(join(base, "inbox"), { port, code: "5678-other-code-word" });
    const err = await sending;
    assertInstanceOf(err, FerryError);
    assertEquals(errorCode(err), "wrong-code");
    assertEquals(err.message, `wrong code: 127.0.0.1:${proxy.port} did not accept it`);
    assertEquals(
      err.hint,
      "the receiver may have restarted with a new code: ask for the code it shows now",
    );
  } finally {
    await proxy.close();
    await server.close();
  }
});

/**
 * A port on 127.0.0.1 that accepts no more connections: its listener's
 * backlog is full, so a new connection gets no answer at all, as behind a
 * firewall that drops it.
 */
async function silentPort(): Promise<{ port: number; close(): void }> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const queued: Deno.TcpConn[] = [];
  const close = () => {
    for (const conn of queued) conn.close();
    listener.close();
  };
  for (let i = 0; i < 10_000; i++) {
    try {
      queued.push(
        await Deno.connect({ hostname: "127.0.0.1", port, signal: AbortSignal.timeout(250) }),
      );
    } catch {
      return { port, close };
    }
  }
  close();
  throw new Error("the backlog never filled");
}

Deno.test("a connection that gets no answer names the firewall and the TCP port", async () => {
  const silent = await silentPort();
  try {
    const err = await connect({ host: "127.0.0.1", port: silent.port }, 300).then(
      () => null,
      (e) => e,
    );
    assertInstanceOf(err, FerryError);
    assertEquals(
      err.message,
      `could not connect to 127.0.0.1:${silent.port}: no answer within 0.3 s (is 'ferry serve' ` +
        `running there, and TCP port ${silent.port} open in its firewall?)`,
    );
    assertEquals(errorCode(err), "timeout");
    // The CLI says it in one line, and --json reports it as a timeout.
    await using baseDir = await tempDir();
    const base = baseDir.path;
    await Deno.writeTextFile(join(base, "a.txt"), "x");
    const to = `127.0.0.1:${silent.port}`;
    const sent = await runCli(["send", join(base, "a.txt"), "--to", to, "--timeout", "1"]);
    assertEquals(sent.code, 1);
    assertEquals(
      sent.stderr,
      `ferry: could not connect to ${to}: no answer within 1 s (is 'ferry serve' running there, ` +
        `and TCP port ${silent.port} open in its firewall?)\n`,
    );
    const json = await runCli([
      "send",
      join(base, "a.txt"),
      "--to",
      to,
      "--timeout",
      "1",
      "--json",
    ]);
    assertEquals(JSON.parse(json.stdout.trimEnd().split("\n").at(-1)!).code, "timeout");
  } finally {
    silent.close();
  }
});

Deno.test("ferry send --json on a slow link reports progress objects while the file moves", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const file = join(base, "slow.bin");
  const size = 12_000_000;
  await Deno.writeFile(file, randomBytes(size));
  const server = await startServer(join(base, "inbox"));
  // About 3 s: many times the progress interval.
  const proxy = new FaultProxy(server.port, { bytesPerSecond: 4_000_000 });
  try {
    const started = performance.now();
    const sent = await runCli(["send", file, "--to", `127.0.0.1:${proxy.port}`, "--json"]);
    const seconds = (performance.now() - started) / 1000;
    assertEquals(sent.code, 0, sent.stderr);
    const objects = sent.stdout.trimEnd().split("\n").map((line) => JSON.parse(line));
    const types = objects.map((o) => o.type);
    const progress = objects.filter((o) => o.type === "progress");
    assert(progress.length >= 3, `${progress.length} progress objects in ${seconds} s`);
    assert(progress.length <= Math.ceil(seconds * 10) + 1, `${progress.length} in ${seconds} s`);
    assert(types.indexOf("progress") > types.indexOf("file-start"), types.join());
    assert(types.lastIndexOf("progress") < types.indexOf("summary"), types.join());
    for (let i = 1; i < progress.length; i++) {
      assert(progress[i].bytes > progress[i - 1].bytes, "only when something moved");
    }
    for (const p of progress) {
      assert(p.bytes <= size && p.sentBytes === p.bytes, JSON.stringify(p));
      assertEquals(p.current, "slow.bin");
    }
    assert(progress.some((p) => p.rate !== null && p.rate > 0), "a rate once known");
    assertEquals(objects.at(-1).bytes, size);
  } finally {
    await proxy.close();
    await server.close();
  }
});
