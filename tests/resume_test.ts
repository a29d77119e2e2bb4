/**
 * Interrupted transfers: cut at any point, automatic retries, damaged data,
 * sources that change, and a receiver that stops. Faults go through
 * tests/fault_proxy.ts on 127.0.0.1.
 */
import {
  assert,
  assertEquals,
  assertGreater,
  assertRejects,
  assertStringIncludes,
} from "@std/assert";
import { join } from "node:path";
import type { SendEvent } from "../src/client/send_session.ts";
import { ConnectionLost } from "../src/errors.ts";
import { DIGEST_NAMES } from "../src/protocol/digests.ts";
import { FaultProxy } from "./fault_proxy.ts";
import {
  randomBytes,
  Rng,
  runCli,
  sendInProcess,
  snapshot,
  spawnCli,
  spawnServe,
  startServer,
  tempDir,
  waitFor,
} from "./_harness.ts";

/** A source tree in base/src: one 3 MB file (sent first) and a folder of small files. */
async function makeSources(base: string): Promise<[big: string, small: string]> {
  const src = join(base, "src");
  await Deno.mkdir(src);
  const big = join(src, "big.bin");
  await Deno.writeFile(big, randomBytes(3_000_000));
  const small = join(src, "small");
  await Deno.mkdir(join(small, "sub"), { recursive: true });
  for (let i = 0; i < 20; i++) {
    await Deno.writeFile(join(small, i % 2 ? "sub" : "", `f${i}.txt`), randomBytes(1000 + i * 97));
  }
  return [big, small];
}

/** Bytes held in the receiver's partial files (0 while there are none). */
function partialBytes(folder: string): number {
  try {
    let total = 0;
    for (const e of Deno.readDirSync(folder)) total += Deno.statSync(join(folder, e.name)).size;
    return total;
  } catch {
    return 0;
  }
}

/** What the sources (made by makeSources) look like on the receiver. */
async function expected(base: string): Promise<Record<string, unknown>> {
  return await snapshot(join(base, "src"));
}

/** Every regular file under a final name in DIR is identical to its source in `src`. */
async function assertOnlyVerified(src: string, dir: string): Promise<void> {
  const want = await snapshot(src);
  for (const [path, entry] of Object.entries(await snapshot(dir))) {
    if (entry.kind !== "file") continue;
    assertEquals(entry.sha256, want[path]?.sha256, `${path} is under its final name unverified`);
  }
}

Deno.test("a transfer cut at any point shows only verified files, and the rerun completes byte-exact", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const paths = await makeSources(base);
  // A clean run through the proxy measures the upstream byte count.
  const probeDir = join(base, "probe");
  const probe = await startServer(probeDir);
  const counter = new FaultProxy(probe.port, {});
  await sendInProcess(counter.port, paths);
  const total = counter.forwarded;
  await counter.close();
  await probe.close();
  const cuts = [
    9,
    200,
    600,
    50_000,
    1_000_000,
    1_500_000,
    2_999_000,
    3_001_000,
    total - 2000,
    total - 10,
  ];
  for (const cut of cuts) {
    const dir = join(base, `inbox-${cut}`);
    const server = await startServer(dir);
    const proxy = new FaultProxy(server.port, { cutAfter: cut });
    try {
      await assertRejects(() => sendInProcess(proxy.port, paths), ConnectionLost);
      await assertOnlyVerified(join(base, "src"), dir);
      const rerun = await sendInProcess(server.port, paths);
      assertEquals(rerun.failed, 0, `cut at ${cut}`);
      assertEquals(await snapshot(dir), await expected(base), `cut at ${cut}`);
      // Data is kept per whole DATA frame (1 MiB): a cut past the first one leaves a prefix to resume.
      if (cut > 1_100_000 && cut < 3_000_000) assertGreater(rerun.resumedBytes, 0, `cut at ${cut}`);
      // Nothing is sent twice: what the rerun sent and resumed is at most the whole.
      assert(rerun.bytes + rerun.resumedBytes <= 3_000_000 + 38_430, `cut at ${cut}`);
      assertEquals([...Deno.readDirSync(join(dir, ".ferry/tmp"))], []);
    } finally {
      await proxy.close();
      await server.close();
    }
  }
});

for (const digest of DIGEST_NAMES) {
  Deno.test(`send retries by itself after a dropped connection and resumes the partial file (${digest})`, async () => {
    await using baseDir = await tempDir();
    const base = baseDir.path;
    const paths = await makeSources(base);
    const dir = join(base, "inbox");
    const server = await startServer(dir);
    const proxy = new FaultProxy(server.port, (n) => n <= 2 ? { cutAfter: 1_000_000 * n } : {});
    const events: SendEvent[] = [];
    try {
      const result = await sendInProcess(proxy.port, paths, {
        retries: 3,
        events,
        digests: [digest],
      });
      const connected = events.filter((e) => e.type === "connected");
      assertEquals(connected.map((e) => e.type === "connected" && e.digest), [
        digest,
        digest,
        digest,
      ]);
      assertEquals(result.failed, 0);
      assertEquals(result.files, 21);
      assertEquals(events.filter((e) => e.type === "retry").length, 2);
      assertGreater(result.resumedBytes, 900_000);
      // Honest rates: the bytes counted as sent exclude what was resumed.
      assertEquals(result.bytes + result.resumedBytes, 3_000_000 + 20 * 1000 + 97 * 190);
      assertEquals(await snapshot(dir), await expected(base));
    } finally {
      await proxy.close();
      await server.close();
    }
  });
}

// On the (default) encrypted channel a flipped byte fails the record's authentication and ends the
// session (tests/secure_channel_test.ts). On the plain channel the file digest is what catches it.
Deno.test("on the plain channel a flipped byte is detected by the digest, the file is resent once, and a second failure is reported", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const file = join(base, "pattern.bin");
  await Deno.writeFile(file, new Uint8Array(200_000).fill(0xaa));
  for (const [flips, ok] of [[[2000], true], [[2000, 250_000], false]] as const) {
    const dir = join(base, `inbox-${flips.length}`);
    const server = await startServer(dir, { plaintext: true });
    const proxy = new FaultProxy(server.port, { flipAt: [...flips], flipValue: 0xaa });
    const events: SendEvent[] = [];
    try {
      const result = await sendInProcess(proxy.port, [file], { events, plaintext: true });
      const warning = events.find((e) => e.type === "warning");
      assert(
        warning?.type === "warning" && /arrived damaged.*digest mismatch/.test(warning.message),
      );
      if (ok) {
        assertEquals(result.failed, 0);
        assertEquals(await Deno.readFile(join(dir, "pattern.bin")), await Deno.readFile(file));
      } else {
        assertEquals(result.failed, 1);
        const failure = events.find((e) => e.type === "file-failed");
        if (failure?.type !== "file-failed") throw new Error("no failure reported");
        assertStringIncludes(failure.reason, "digest mismatch");
        assertEquals(Object.keys(await snapshot(dir)), []);
      }
    } finally {
      await proxy.close();
      await server.close();
    }
  }
});

Deno.test("data split into 1-byte writes arrives intact", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const file = join(base, "a.bin");
  await Deno.writeFile(file, randomBytes(20_000));
  const server = await startServer(join(base, "inbox"));
  const proxy = new FaultProxy(server.port, { split: true });
  try {
    const result = await sendInProcess(proxy.port, [file]);
    assertEquals(result.files, 1);
    assertEquals(await Deno.readFile(join(base, "inbox/a.bin")), await Deno.readFile(file));
  } finally {
    await proxy.close();
    await server.close();
  }
});

Deno.test("a source file that changes while being sent fails with a clear message and the rest go on", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const paths = await makeSources(base);
  // Larger than the socket buffers between sender and receiver, so the sender is still reading it.
  await Deno.writeFile(paths[0], randomBytes(40_000_000));
  const dir = join(base, "inbox");
  const server = await startServer(dir);
  const proxy = new FaultProxy(server.port, { stallAfter: 500_000 });
  const events: SendEvent[] = [];
  try {
    const sending = sendInProcess(proxy.port, paths, { events });
    await waitFor("500 kB to go through", () => proxy.forwarded >= 500_000);
    const f = await Deno.open(paths[0], { append: true });
    await f.write(new Uint8Array(10));
    f.close();
    proxy.release();
    const result = await sending;
    assertEquals(result.failed, 1);
    assertEquals(result.files, 20);
    const failure = events.find((e) => e.type === "file-failed");
    if (failure?.type !== "file-failed") throw new Error("no failure reported");
    assertEquals(failure.path, "big.bin");
    assertStringIncludes(failure.reason, "it changed while being sent");
    const tree = await snapshot(dir);
    assertEquals(tree["big.bin"], undefined);
    assertEquals(Object.keys(tree).filter((p) => p.startsWith("small/")).length, 21);
  } finally {
    await proxy.close();
    await server.close();
  }
});

Deno.test("SIGTERM on serve tells the sender, keeps only the resumable partial, exits 0, and the rerun resumes", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const paths = await makeSources(base);
  const dir = join(base, "inbox");
  const serve = await spawnServe(dir);
  const proxy = new FaultProxy(serve.port, { stallAfter: 1_500_000 });
  try {
    const sending = runCli(["send", ...paths, "--to", `127.0.0.1:${proxy.port}`, "--retries", "0"]);
    await waitFor("1.5 MB to go through", () => proxy.forwarded >= 1_500_000, 20_000);
    // The first 1 MiB of big.bin has been received and written (not only forwarded).
    await waitFor(
      "a partial over 1 MB",
      () => partialBytes(join(dir, ".ferry/partial")) > 1_000_000,
      20_000,
    );
    const stopped = await serve.stop("SIGTERM");
    assertEquals(stopped.code, 0);
    assertStringIncludes(stopped.stdout, "ferry: stopped");
    proxy.release();
    const sent = await sending;
    assertEquals(sent.code, 1);
    assertStringIncludes(sent.stderr, "is shutting down");
    assertEquals([...Deno.readDirSync(join(dir, ".ferry/tmp"))], []);
    const partials = [...Deno.readDirSync(join(dir, ".ferry/partial"))];
    assertEquals(partials.length, 1);
    assertGreater(Deno.statSync(join(dir, ".ferry/partial", partials[0]!.name)).size, 1_000_000);
  } finally {
    await proxy.close();
    await serve.stop();
  }
  const again = await spawnServe(dir);
  try {
    const rerun = await runCli(["send", ...paths, "--to", `127.0.0.1:${again.port}`]);
    assertEquals(rerun.code, 0, rerun.stderr);
    assertStringIncludes(rerun.stdout, "resumed");
    assertEquals(await snapshot(dir), await expected(base));
  } finally {
    await again.stop();
  }
});

Deno.test("killing send at random moments 20 times, then rerunning it, ends with a byte-exact tree", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const src = join(base, "tree");
  await Deno.mkdir(join(src, "a/b"), { recursive: true });
  await Deno.writeFile(join(src, "large.bin"), randomBytes(24_000_000));
  for (let i = 0; i < 150; i++) {
    await Deno.writeFile(join(src, i % 3 ? "a" : "a/b", `small-${i}.dat`), randomBytes(4096 + i));
  }
  const dir = join(base, "inbox");
  const serve = await spawnServe(dir, ["--quiet"]);
  // Slow enough (1 MB/s) that the killed runs (under 0.8 s each) cannot finish the 24.6 MB between
  // them: a finished run would make the next one a new transfer (a second copy, by design).
  const proxy = new FaultProxy(serve.port, { bytesPerSecond: 1_000_000 });
  // Seeded, so a failure can be replayed.
  const random = new Rng(20261123);
  try {
    for (let i = 0; i < 20; i++) {
      const running = spawnCli(["send", src, "--to", `127.0.0.1:${proxy.port}`, "--quiet"]);
      await new Promise((r) => setTimeout(r, 100 + random.next() * 700));
      try {
        running.child.kill("SIGKILL");
      } catch { /* it finished first */ }
      await running.done();
      if (await Deno.lstat(join(dir, "tree")).catch(() => null)) {
        await assertOnlyVerified(src, join(dir, "tree"));
      }
    }
    const rerun = await runCli(["send", src, "--to", `127.0.0.1:${serve.port}`, "--quiet"]);
    assertEquals(rerun.code, 0, rerun.stderr);
    const want = await snapshot(src);
    assertEquals(await snapshot(join(dir, "tree")), want);
    assertEquals(Object.keys(await snapshot(dir)).filter((p) => / \(\d+\)/.test(p)), []);
  } finally {
    await proxy.close();
    await serve.stop();
  }
});

Deno.test("a connection reset mid-file is retried and the transfer completes byte-exact", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const paths = await makeSources(base);
  const dir = join(base, "inbox");
  const server = await startServer(dir);
  const proxy = new FaultProxy(server.port, (n) => n === 1 ? { resetAfter: 2_200_000 } : {});
  const events: SendEvent[] = [];
  try {
    const result = await sendInProcess(proxy.port, paths, { retries: 2, events });
    assertEquals(result.failed, 0);
    assertEquals(events.filter((e) => e.type === "retry").length, 1);
    assertGreater(result.resumedBytes, 0);
    assertEquals(await snapshot(dir), await expected(base));
  } finally {
    await proxy.close();
    await server.close();
  }
});
