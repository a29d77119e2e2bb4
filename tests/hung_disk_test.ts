/**
 * A receiving disk that stops answering (a hung disk or network file
 * system): a storage call never returns. The session it belongs to is
 * dropped once its connection is closed, so the server still reports it and
 * still stops; its slot comes back when the call returns. Simulated with
 * `fsfreeze` on a small ext4 image mounted through a loop device, so these
 * run as root on Linux and are skipped otherwise.
 */
import { assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { join } from "node:path";
import { FerryError } from "../src/errors.ts";
import type { ServerEvent } from "../src/server/session.ts";
import {
  type CliResult,
  readTurnAway,
  sendInProcess,
  snapshot,
  spawnServe,
  startServer,
  tempDir,
  waitFor,
} from "./_harness.ts";
import { assertRan, freeze, missingTools, mount, runTool, thaw, umount } from "./_mounts.ts";

async function canFreeze(): Promise<string | null> {
  if (Deno.build.os !== "linux") return "needs Linux (loop devices and fsfreeze)";
  if (Deno.uid() !== 0) return "needs root to mount an image and freeze it";
  return await missingTools(["mkfs.ext4", "fsfreeze", "losetup"]);
}

const skip = await canFreeze();
if (skip) console.log(`hung_disk_test: skipped: ${skip}`);

/** Runs `fn` on a fresh 64 MiB ext4 mounted at a temporary folder, which it may freeze. */
async function withFreezableDisk(fn: (dir: string) => Promise<void>): Promise<void> {
  await using baseDir = await tempDir("ferry-ext4-");
  const base = baseDir.path;
  const image = join(base, "disk.img");
  const dir = join(base, "mnt");
  await Deno.mkdir(dir);
  const file = await Deno.open(image, { write: true, create: true });
  await file.truncate(64 * 1024 * 1024);
  file.close();
  assertRan(await runTool("mkfs.ext4", ["-q", "-F", image]));
  assertRan(await mount(["-o", "loop", image, dir]));
  // Whatever happens to the test, the disk thaws within a minute: a thread stuck on a frozen
  // disk cannot be killed, and would otherwise hang this process for good. SIGTERM ends the
  // watch and its sleep.
  const safety = new Deno.Command("sh", {
    args: [
      "-c",
      `sleep 60 & p=$!; trap 'kill $p; exit 0' TERM; wait $p; fsfreeze -u '${dir}'`,
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await fn(dir);
  } finally {
    await thaw(dir);
    try {
      safety.kill("SIGTERM");
    } catch { /* already ended */ }
    await safety.status;
    await umount(dir);
  }
}

/** Freezes the file system at `dir` while `fn` runs. */
async function frozenWhile(dir: string, fn: () => Promise<void>): Promise<void> {
  await freeze(dir);
  try {
    await fn();
  } finally {
    await thaw(dir);
  }
}

/** Sends `path` until the receiver takes it (a slot may take a moment to come back). */
async function sendWhenFree(port: number, path: string): Promise<number> {
  for (let i = 0;; i++) {
    try {
      return (await sendInProcess(port, [path])).files;
    } catch (err) {
      if (i >= 50) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

Deno.test({
  name:
    "a session stuck on a hung disk is dropped and reported; its slot comes back when the disk answers",
  ignore: skip !== null,
  async fn() {
    await using baseDir = await tempDir();
    const base = baseDir.path;
    const big = join(base, "big.bin");
    await Deno.writeFile(big, new Uint8Array(8 * 1024 * 1024).fill(7));
    await Deno.writeTextFile(join(base, "small.txt"), "after the thaw");
    await withFreezableDisk(async (dir) => {
      const server = await startServer(dir, {
        limits: { idleTimeoutMs: 300, maxConnections: 1 },
        stallGraceMs: 300,
      });
      const events: ServerEvent[] = server.events;
      try {
        await frozenWhile(dir, async () => {
          // The receiver's first write to the disk never returns: it stops reading, the sender
          // goes quiet, the idle deadline closes the connection.
          await assertRejects(() => sendInProcess(server.port, [big]), FerryError);
          await waitFor("the session's end", () => events.some((e) => e.type === "session-end"));
          const end = events.find((e) => e.type === "session-end");
          if (end?.type !== "session-end") throw new Error("unreachable");
          // Stuck in the handshake (the transfer's record) or on the first file, by timing.
          assertStringIncludes(end.error ?? "", "timed out: ");
          assertStringIncludes(end.error ?? "", "; dropped after 0.3 s more");
          assertStringIncludes(end.error ?? "", "a storage call in the receiving folder");
          // Its file and buffers are still held, so is its slot.
          const busy = await assertRejects(
            () => sendInProcess(server.port, [join(base, "small.txt")]),
            FerryError,
          );
          // The sender explains the unauthenticated ERROR by its code; the receiver says why.
          assertStringIncludes(busy.message, "it is busy (too many senders at once) (busy)");
          const said = await readTurnAway(server.port);
          assertStringIncludes(said?.message ?? "", "1 of its 1 connection slots wait on its disk");
        });
        // The stuck call returns; the dropped session lets go of what it held.
        await waitFor("the stuck call to return", () => server.server.stalled === 0);
        const sent = await sendWhenFree(server.port, join(base, "small.txt"));
        assertEquals(sent, 1);
        const tree = await snapshot(dir);
        assertEquals(Object.keys(tree).filter((p) => !p.startsWith(".ferry")).sort(), [
          "lost+found",
          "small.txt",
        ]);
        assertEquals(await Deno.readTextFile(join(dir, "small.txt")), "after the thaw");
        const ended = events.flatMap((e) => e.type === "session-end" ? [e.session] : []);
        assertEquals(ended.length, new Set(ended).size, "each session reports its end once");
      } finally {
        await server.close();
      }
    });
  },
});

Deno.test({
  name: "a sender that reconnects while its earlier session is stuck on a hung disk is told busy",
  ignore: skip !== null,
  async fn() {
    await using baseDir = await tempDir();
    const base = baseDir.path;
    const big = join(base, "big.bin");
    const data = new Uint8Array(8 * 1024 * 1024).map((_, i) => i * 7);
    await Deno.writeFile(big, data);
    await withFreezableDisk(async (dir) => {
      const server = await startServer(dir, {
        limits: { idleTimeoutMs: 300 },
        stallGraceMs: 300,
      });
      try {
        await frozenWhile(dir, async () => {
          await assertRejects(() => sendInProcess(server.port, [big]), FerryError);
          await waitFor("the drop", () => server.server.stalled === 1);
          // The same transfer again (same host, same sources): its files are the stuck
          // session's, so the new session does not touch them, nor the disk.
          const again = await assertRejects(() => sendInProcess(server.port, [big]), FerryError);
          assertStringIncludes(
            again.message,
            "refused the session: an earlier session of this transfer still waits on the " +
              "receiver's disk (busy)",
          );
        });
        await waitFor("the stuck call to return", () => server.server.stalled === 0);
        assertEquals(await sendWhenFree(server.port, big), 1);
        assertEquals(await Deno.readFile(join(dir, "big.bin")), data);
      } finally {
        await server.close();
      }
    });
  },
});

Deno.test({
  name: "the wait for a superseded session stuck on a hung disk is not the sender's handshake time",
  ignore: skip !== null,
  async fn() {
    await using baseDir = await tempDir();
    const base = baseDir.path;
    const big = join(base, "big.bin");
    await Deno.writeFile(big, new Uint8Array(8 * 1024 * 1024).fill(3));
    await withFreezableDisk(async (dir) => {
      // The first session is dropped the grace (2 s) after it was closed, by its own handshake
      // deadline or by the second one superseding it: either way the second waits for it far
      // longer than the handshake deadline, which would cut it off if the wait counted.
      const server = await startServer(dir, {
        limits: { handshakeTimeoutMs: 500 },
        stallGraceMs: 2000,
      });
      try {
        await frozenWhile(dir, async () => {
          const first = sendInProcess(server.port, [big]).catch((err) => err);
          await waitFor(
            "the first session",
            () => server.events.some((e) => e.type === "session-start"),
          );
          await new Promise((r) => setTimeout(r, 500)); // it is stuck on the disk by now
          const again = await assertRejects(() => sendInProcess(server.port, [big]), FerryError);
          assertStringIncludes(again.message, "still waits on the receiver's disk (busy)");
          const starts = server.events.flatMap((e) =>
            e.type === "session-start" ? [e.session] : []
          );
          assertEquals(starts.length, 2);
          await waitFor(
            "the second session's end",
            () => server.events.some((e) => e.type === "session-end" && e.session === starts[1]),
          );
          const end = server.events.find((e) =>
            e.type === "session-end" && e.session === starts[1]
          );
          if (end?.type !== "session-end") throw new Error("unreachable");
          assertEquals(
            end.error,
            "an earlier session of this transfer still waits on the receiver's disk",
          );
          await first;
        });
        await waitFor("the stuck call to return", () => server.server.stalled === 0);
      } finally {
        await server.close();
      }
    });
  },
});

Deno.test({
  name: "serve stops on a signal while a session is stuck on a hung disk",
  ignore: skip !== null,
  async fn() {
    await using baseDir = await tempDir();
    const base = baseDir.path;
    const big = join(base, "big.bin");
    await Deno.writeFile(big, new Uint8Array(8 * 1024 * 1024).fill(9));
    await withFreezableDisk(async (dir) => {
      const server = await startServer(dir, { stallGraceMs: 300 });
      let closed = false;
      try {
        await frozenWhile(dir, async () => {
          const sending = sendInProcess(server.port, [big]).catch(() => null);
          await waitFor(
            "the session",
            () => server.events.some((e) => e.type === "session-start"),
          );
          await new Promise((r) => setTimeout(r, 500)); // it is stuck on the disk by now
          server.server.close(); // what serve does on SIGINT or SIGTERM
          await server.server.done; // would wait for the thaw without the drop
          closed = true;
          const end = server.events.find((e) => e.type === "session-end");
          if (end?.type !== "session-end") throw new Error("no session-end");
          assertStringIncludes(end.error ?? "", "the receiver is shutting down; dropped after");
          await sending;
        });
      } finally {
        if (!closed) await server.close();
      }
      await waitFor("the stuck call to return", () => server.server.stalled === 0);
    });
  },
});

Deno.test({
  name: "ferry serve stops on SIGTERM with a session stuck on a hung disk, and says so",
  ignore: skip !== null,
  async fn() {
    await using baseDir = await tempDir();
    const base = baseDir.path;
    const big = join(base, "big.bin");
    await Deno.writeFile(big, new Uint8Array(8 * 1024 * 1024).fill(5));
    await withFreezableDisk(async (dir) => {
      const serve = await spawnServe(dir);
      let stopping = null as Promise<CliResult> | null;
      try {
        await frozenWhile(dir, async () => {
          const sending = sendInProcess(serve.port, [big]).catch(() => null);
          await new Promise((r) => setTimeout(r, 1000)); // the session is stuck on the disk by now
          stopping = serve.stop("SIGTERM");
          // The session is dropped after STALL_GRACE_MS (10 s) instead of being waited for.
          await waitFor(
            "the warning",
            () => serve.output().includes("still waiting on the disk"),
            20_000,
          );
          assertStringIncludes(
            serve.output(),
            "ended early after 0 files (0 B): the receiver is shutting down; dropped after 10 s more",
          );
          assertStringIncludes(
            serve.output(),
            `ferry: warning: stopping with 1 dropped session(s) still waiting on the disk; ` +
              `what they staged may be left in ${join(dir, ".ferry")}`,
          );
          await sending;
        });
      } finally {
        // A thread stuck on a frozen disk cannot end, and neither can its process, until it
        // thaws: frozenWhile() has thawed it by now.
        const result = await (stopping ?? serve.stop());
        assertEquals(result.code, 0, result.stderr);
      }
    });
  },
});
