/**
 * A receiving disk that is full or read-only: clear errors, nothing partial
 * under a final name, and the server keeps running. These need mounts (a
 * small tmpfs), so they run as root and are skipped otherwise.
 */
import {
  assertEquals,
  assertGreater,
  assertLess,
  assertRejects,
  assertStringIncludes,
} from "@std/assert";
import { join } from "node:path";
import type { SendEvent } from "../src/client/send_session.ts";
import { ConnectionLost } from "../src/errors.ts";
import { Inbox } from "../src/server/inbox.ts";
import { FaultProxy } from "./fault_proxy.ts";
import {
  freePort,
  randomBytes,
  runCli,
  sendInProcess,
  snapshot,
  spawnServe,
  startServer,
  tempDir,
  waitFor,
} from "./_harness.ts";
import { assertRan, mount, umount } from "./_mounts.ts";

async function canMount(): Promise<string | null> {
  if (Deno.build.os !== "linux") return "needs Linux tmpfs mounts";
  if (Deno.uid() !== 0) return "needs root to mount a small tmpfs";
  await using dir = await tempDir("ferry-tmpfs-");
  const ok = (await mount(["-t", "tmpfs", "-o", "size=1m", "tmpfs", dir.path])).success;
  if (ok) await umount(dir.path);
  return ok ? null : "mount -t tmpfs failed here";
}

const skip = await canMount();
if (skip) console.log(`disk_faults_test: skipped: ${skip}`);

/** Runs `fn` with `dir` mounted as a tmpfs of `size`, unmounting afterwards. */
async function withTmpfs(size: string, fn: (dir: string) => Promise<void>): Promise<void> {
  await using mountPoint = await tempDir("ferry-tmpfs-");
  const dir = mountPoint.path;
  assertRan(await mount(["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir]));
  try {
    await fn(dir);
  } finally {
    await umount(dir);
  }
}

Deno.test({
  name:
    "a file of several frames received into a tmpfs DIR (written in place) arrives byte for byte",
  ignore: skip !== null,
  async fn() {
    await using baseDir = await tempDir();
    const base = baseDir.path;
    const data = randomBytes(5 * 1024 * 1024 + 12_345);
    await Deno.writeFile(join(base, "big.bin"), data);
    await withTmpfs("64m", async (inbox) => {
      // The receiver sees a file system in memory here, so it writes in place.
      assertEquals((await Inbox.open(inbox)).writePiece, Infinity);
      const server = await startServer(inbox);
      try {
        assertEquals((await sendInProcess(server.port, [join(base, "big.bin")])).files, 1);
        assertEquals(await Deno.readFile(join(inbox, "big.bin")), data);
      } finally {
        await server.close();
      }
    });
  },
});

Deno.test({
  name:
    "a transfer into a tmpfs DIR cut mid-file resumes from the partial and arrives byte for byte",
  ignore: skip !== null,
  async fn() {
    await using baseDir = await tempDir();
    const base = baseDir.path;
    const data = randomBytes(5 * 1024 * 1024 + 999);
    await Deno.writeFile(join(base, "big.bin"), data);
    await withTmpfs("64m", async (inbox) => {
      const server = await startServer(inbox);
      const proxy = new FaultProxy(server.port, { cutAfter: 3_500_000 });
      try {
        await assertRejects(
          () => sendInProcess(proxy.port, [join(base, "big.bin")]),
          ConnectionLost,
        );
        await waitFor(
          "the session's end",
          () => server.events.some((e) => e.type === "session-end"),
        );
        const rerun = await sendInProcess(server.port, [join(base, "big.bin")]);
        assertEquals(rerun.files, 1);
        assertGreater(rerun.resumedBytes, 0, "the rerun resumes the partial written in place");
        assertEquals(await Deno.readFile(join(inbox, "big.bin")), data);
      } finally {
        await proxy.close();
        await server.close();
      }
    });
  },
});

Deno.test({
  name: "a file larger than the free space is refused before any of its data moves",
  ignore: skip !== null,
  async fn() {
    await using baseDir = await tempDir();
    const base = baseDir.path;
    const big = join(base, "big.bin");
    await Deno.writeFile(big, new Uint8Array(100_000_000));
    await withTmpfs("64m", async (inbox) => {
      const server = await startServer(inbox);
      const proxy = new FaultProxy(server.port, {});
      const events: SendEvent[] = [];
      try {
        const result = await sendInProcess(proxy.port, [big], { events });
        assertEquals(result.failed, 1);
        const failure = events.find((e) => e.type === "file-failed");
        if (failure?.type !== "file-failed") throw new Error("no failure reported");
        assertStringIncludes(failure.reason, "not enough free space on the receiver");
        assertLess(proxy.forwarded, 64 * 1024, "no data went out");
        assertEquals(Object.keys(await snapshot(inbox)), []);
      } finally {
        await proxy.close();
        await server.close();
      }
    });
  },
});

Deno.test({
  name:
    "a disk that fills up mid-file fails that file with a clear error, exit 1, and the server keeps serving",
  ignore: skip !== null,
  async fn() {
    await using baseDir = await tempDir();
    const base = baseDir.path;
    await Deno.writeTextFile(join(base, "small.txt"), "still fits");
    await withTmpfs("24m", async (inbox) => {
      const serve = await spawnServe(inbox);
      try {
        // Standard input has no size in advance, so only the write itself can find the disk full.
        const sent = await runCli(
          ["send", "-", "--name", "stream.bin", "--to", `127.0.0.1:${serve.port}`],
          { stdin: new Uint8Array(40_000_000) },
        );
        assertEquals(sent.code, 1);
        assertStringIncludes(sent.stderr, "failed stream.bin: the receiver's disk is full");
        assertEquals(Object.keys(await snapshot(inbox)), []);
        assertEquals([...Deno.readDirSync(join(inbox, ".ferry/tmp"))], []);
        const again = await runCli([
          "send",
          join(base, "small.txt"),
          "--to",
          `127.0.0.1:${serve.port}`,
        ]);
        assertEquals(again.code, 0, again.stderr);
        assertEquals(await Deno.readTextFile(join(inbox, "small.txt")), "still fits");
      } finally {
        await serve.stop();
      }
    });
  },
});

Deno.test({
  name: "serve on a read-only folder fails at start with one clear line",
  ignore: skip !== null,
  async fn() {
    await withTmpfs("1m", async (dir) => {
      await mount(["-o", "remount,ro", dir]);
      const result = await runCli(["serve", dir, "--port", String(freePort())]);
      assertEquals(result.code, 1);
      assertEquals(result.stderr.trim(), `ferry: cannot write to ${dir}: read-only file system`);
    });
  },
});

Deno.test({
  name: "a read-only folder inside DIR fails the files for it with a clear reason; the rest arrive",
  ignore: skip !== null,
  async fn() {
    await using baseDir = await tempDir();
    const base = baseDir.path;
    const src = join(base, "src");
    await Deno.mkdir(join(src, "locked"), { recursive: true });
    await Deno.writeTextFile(join(src, "locked/x.txt"), "x");
    await Deno.writeTextFile(join(src, "free.txt"), "y");
    const inbox = join(base, "inbox");
    await Deno.mkdir(join(inbox, "src/locked"), { recursive: true });
    await withTmpfs("1m", async (ro) => {
      await mount(["--bind", ro, join(inbox, "src/locked")]);
      await mount(["-o", "remount,ro,bind", join(inbox, "src/locked")]);
      const server = await startServer(inbox);
      const events: SendEvent[] = [];
      try {
        const result = await sendInProcess(server.port, [src], { events });
        assertEquals(result.files, 1);
        assertEquals(result.failed, 1);
        const failure = events.find((e) => e.type === "file-failed");
        if (failure?.type !== "file-failed") throw new Error("no failure reported");
        assertEquals(failure.path, "src/locked/x.txt");
        assertStringIncludes(failure.reason, "read-only");
        assertEquals(await Deno.readTextFile(join(inbox, "src/free.txt")), "y");
      } finally {
        await server.close();
        await umount(join(inbox, "src/locked"));
      }
    });
  },
});
