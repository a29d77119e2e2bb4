/**
 * A local user who changes DIR while a batch is in flight: the batch is
 * announced and planned while DIR/sub is a folder, then DIR/sub is moved
 * away and replaced by a symbolic link to a folder outside DIR, then the
 * data comes. Nothing may be written outside DIR: the file is refused with
 * a reason naming the link, and the session goes on with the next file.
 *
 * Each case runs for a small file (held in memory and placed in batches,
 * small_file.ts) and a large one (staged on disk as it arrives,
 * incoming_file.ts); for a folder that existed before the batch and one the
 * server created for it; and for both ways of placing: folder descriptors
 * through the C library (beneath.ts, an in-process server) and Deno's API
 * by path (path_folders.ts, a `ferry serve` without ffi permission, where
 * the C library is not loaded).
 */
import { assertEquals, assertMatch } from "@std/assert";
import { join } from "node:path";
import { encodeFileEnd, FrameType } from "../src/protocol/frame.ts";
import type { Ack, Decision } from "../src/protocol/messages.ts";
import { SMALL_FILE_MAX } from "../src/server/small_file.ts";
import { loadNativeFs } from "../src/server/native_fs.ts";
import {
  listTree,
  randomBytes,
  RawClient,
  sha256,
  snapshot,
  spawnServe,
  startServer,
  tempDir,
} from "./_harness.ts";

const MTIME = 1_700_000_000_000;
const native = loadNativeFs() !== null;

type Json = Record<string, unknown>;

function fileEntry(id: number, path: string, size: number): Json {
  return { id, path, kind: "file", size, mtime: MTIME, mode: 0o644 };
}

function dirEntry(id: number, path: string): Json {
  return { id, path, kind: "dir", size: null, mtime: MTIME, mode: 0o777 };
}

async function expectFrame(client: RawClient, type: number): Promise<Json> {
  const frame = await client.next();
  if (frame === null) throw new Error(`expected frame 0x${type.toString(16)}, the server closed`);
  assertEquals(frame.type, type, JSON.stringify(frame.json));
  return frame.json as Json;
}

async function sendFile(client: RawClient, id: number, data: Uint8Array): Promise<void> {
  for (let at = 0; at < data.length; at += 64 * 1024) {
    await client.writer.frame(FrameType.DATA, data.subarray(at, at + 64 * 1024));
  }
  await client.writer.frame(
    FrameType.FILE_END,
    encodeFileEnd({ id, length: data.length, digest: sha256(data) }),
  );
  await client.writer.flush();
}

async function readAcks(client: RawClient, n: number): Promise<Ack[]> {
  const acks: Ack[] = [];
  while (acks.length < n) acks.push(...(await expectFrame(client, FrameType.ACK)).acks as Ack[]);
  return acks;
}

/** A receiver on 127.0.0.1 (its port), stopped by `close`. */
interface Receiver {
  port: number;
  close(): Promise<void>;
}

/** The in-process server: the C library's calls where they load (this test's permissions). */
async function inProcess(dir: string): Promise<Receiver> {
  const srv = await startServer(dir);
  return { port: srv.port, close: () => srv.close() };
}

/**
 * `ferry serve` in a child process without ffi permission: the C library is
 * not loaded there, so it places files through Deno's API.
 */
async function withoutFfi(dir: string): Promise<Receiver> {
  const serve = await spawnServe(dir, ["--no-discovery"], {
    permissions: [
      "--allow-net",
      "--allow-read",
      "--allow-write",
      "--allow-sys",
      "--allow-env",
      "--deny-ffi", // on purpose: ferry then runs without the C library
    ],
  });
  return {
    port: serve.port,
    async close() {
      await serve.stop();
    },
  };
}

interface Case {
  size: "small" | "large";
  folder: "existed" | "created";
  receiver: "descriptors" | "paths";
  /** What the local user does to DIR/sub: moves it away and links to outside, or only moves it. */
  swap: "link" | "move";
}

async function raceCase(c: Case): Promise<void> {
  await using baseDir = await tempDir("ferry-race-");
  const base = baseDir.path;
  await race(base, c);
}

async function race(base: string, { size, folder, receiver, swap }: Case): Promise<void> {
  const dir = join(base, "inbox");
  const outside = join(base, "outside");
  const aside = join(base, "aside");
  await Deno.mkdir(dir);
  await Deno.mkdir(outside);
  await Deno.writeTextFile(join(outside, "keep.txt"), "the outside folder's own file\n");
  if (folder === "existed") await Deno.mkdir(join(dir, "sub"));
  const before = await snapshot(outside);
  const bytes = size === "small" ? 300 : SMALL_FILE_MAX + 5000;
  const key = randomBytes(bytes);
  const good = randomBytes(bytes);
  const server = receiver === "descriptors" ? await inProcess(dir) : await withoutFfi(dir);
  const client = await RawClient.connect(server.port);
  try {
    assertEquals((await client.handshake())?.type, FrameType.WELCOME);
    const entries = [
      fileEntry(1, "sub/authorized_keys", bytes),
      ...(folder === "created" ? [dirEntry(2, "sub")] : []),
      fileEntry(3, "other/ok.bin", bytes),
      dirEntry(4, "other"),
    ];
    await client.json(FrameType.ANNOUNCE, { batch: 0, entries });
    const plan = await expectFrame(client, FrameType.PLAN);
    const decisions = plan.decisions as Decision[];
    assertEquals(decisions.map((d) => d.action), entries.map(() => "accept"));
    // Checked, planned and (for "created") made by the server; now a local user swaps it.
    await Deno.rename(join(dir, "sub"), aside);
    if (swap === "link") await Deno.symlink(outside, join(dir, "sub"));
    await sendFile(client, 1, key);
    await sendFile(client, 3, good);
    const acks = await readAcks(client, 2);
    assertEquals(acks.map((a) => [a.id, a.ok]), [[1, false], [3, true]]);
    assertMatch(acks[0]!.reason ?? "", swap === "link" ? /symbolic link/ : /moved or removed/);
    await client.send(FrameType.DONE, new Uint8Array(0));
    const bye = await expectFrame(client, FrameType.BYE);
    assertEquals([bye.files, bye.failed], [1, 1]);
  } finally {
    client.close();
    await server.close();
  }
  assertEquals(await snapshot(outside), before, "nothing may be written outside DIR");
  assertEquals([...Deno.readDirSync(aside)], [], "nor in the folder moved out of DIR");
  assertEquals(await Deno.readFile(join(dir, "other", "ok.bin")), good);
  if (swap === "link") {
    assertEquals(await Deno.readLink(join(dir, "sub")), outside, "the link itself is left alone");
  }
  assertEquals([...Deno.readDirSync(join(dir, ".ferry", "tmp"))], [], "no staged leftovers");
}

for (const receiver of ["descriptors", "paths"] as const) {
  const ignore = Deno.build.os === "windows" || (receiver === "descriptors" && !native);
  for (const size of ["small", "large"] as const) {
    for (const folder of ["existed", "created"] as const) {
      Deno.test({
        name: `a folder swapped for a link after the plan refuses its ${size} file ` +
          `(folder ${folder}, placed through ${receiver}) and the session goes on`,
        ignore,
        fn: () => raceCase({ size, folder, receiver, swap: "link" }),
      });
    }
    Deno.test({
      name: `a folder moved out of DIR after the plan refuses its ${size} file ` +
        `(placed through ${receiver}), which never lands in the moved folder`,
      ignore,
      fn: () => raceCase({ size, folder: "existed", receiver, swap: "move" }),
    });
  }
}

/**
 * DIR/.ferry (ferry's staging folders) swapped for a link to a folder
 * outside DIR after the plan: a large file, staged by path as its data
 * arrives (in .ferry/tmp, or as a resumable partial in .ferry/partial),
 * must not be written there. (Deno's API opens the staging file by path:
 * it is created through the link, empty, found out and removed again
 * before any data is written, so the folders' times outside may change.)
 */
async function stagingRace(
  base: string,
  receiver: Case["receiver"],
  staging: "tmp" | "partial",
): Promise<void> {
  const dir = join(base, "inbox");
  const outside = join(base, "outside");
  await Deno.mkdir(dir);
  await Deno.mkdir(join(outside, "tmp"), { recursive: true });
  await Deno.mkdir(join(outside, "partial"));
  await Deno.mkdir(join(outside, "transfers"));
  const data = randomBytes(3 * SMALL_FILE_MAX);
  const server = receiver === "descriptors" ? await inProcess(dir) : await withoutFfi(dir);
  const client = await RawClient.connect(server.port);
  try {
    const hello = staging === "partial"
      ? { features: ["resume"], transfer: "0123456789abcdef0123456789abcdef" }
      : {};
    assertEquals((await client.handshake(undefined, hello))?.type, FrameType.WELCOME);
    await client.json(FrameType.ANNOUNCE, {
      batch: 0,
      entries: [fileEntry(1, "big.bin", data.length)],
    });
    const plan = await expectFrame(client, FrameType.PLAN);
    assertEquals((plan.decisions as Decision[]).map((d) => d.action), ["accept"]);
    const before = await listTree(outside);
    await Deno.rename(join(dir, ".ferry"), join(base, "ferry-aside"));
    await Deno.symlink(outside, join(dir, ".ferry"));
    // The first part of the data, then a pause while the file would be staged.
    await client.send(FrameType.DATA, data.subarray(0, SMALL_FILE_MAX));
    await new Promise((r) => setTimeout(r, 200));
    assertEquals(await listTree(outside), before, "nothing staged outside DIR");
    await sendFile(client, 1, data.subarray(SMALL_FILE_MAX));
    const ack = (await readAcks(client, 1))[0]!;
    assertEquals([ack.id, ack.ok], [1, false]);
    assertMatch(ack.reason ?? "", /staging folder/);
    await client.send(FrameType.DONE, new Uint8Array(0));
    await expectFrame(client, FrameType.BYE);
    assertEquals(await listTree(outside), before, "nothing written outside DIR");
  } finally {
    client.close();
    await server.close();
  }
}

for (const receiver of ["descriptors", "paths"] as const) {
  for (const staging of ["tmp", "partial"] as const) {
    Deno.test({
      name: `ferry's staging folders swapped for a link after the plan: a large file staged in ` +
        `.ferry/${staging} (placed through ${receiver}) is refused, not written outside DIR`,
      ignore: Deno.build.os === "windows" || (receiver === "descriptors" && !native),
      async fn() {
        await using baseDir = await tempDir("ferry-race-");
        const base = baseDir.path;
        await stagingRace(base, receiver, staging);
      },
    });
  }
}

/**
 * DIR/sub held open by the session (a file placed in it), then moved out of
 * DIR, or moved and replaced by a link to a folder outside: a new folder
 * announced in it afterwards is made beneath DIR (a fresh DIR/sub) or
 * refused, never made in the folder that was moved nor through the link.
 */
async function newFolderInMoved(base: string, receiver: Case["receiver"], swap: Case["swap"]) {
  const dir = join(base, "inbox");
  const outside = join(base, "outside");
  const aside = join(base, "aside");
  await Deno.mkdir(dir);
  await Deno.mkdir(outside);
  const before = await snapshot(outside);
  const first = randomBytes(300);
  const second = randomBytes(300);
  const server = receiver === "descriptors" ? await inProcess(dir) : await withoutFfi(dir);
  const client = await RawClient.connect(server.port);
  try {
    assertEquals((await client.handshake())?.type, FrameType.WELCOME);
    await client.json(FrameType.ANNOUNCE, {
      batch: 0,
      entries: [fileEntry(1, "sub/a.bin", first.length)],
    });
    await expectFrame(client, FrameType.PLAN);
    await sendFile(client, 1, first);
    assertEquals((await readAcks(client, 1)).map((a) => a.ok), [true]);
    await Deno.rename(join(dir, "sub"), aside);
    if (swap === "link") await Deno.symlink(outside, join(dir, "sub"));
    await new Promise((r) => setTimeout(r, 20)); // past the check's millisecond
    await client.json(FrameType.ANNOUNCE, {
      batch: 1,
      entries: [fileEntry(2, "sub/new/b.bin", second.length), dirEntry(3, "sub/new")],
    });
    const plan = await expectFrame(client, FrameType.PLAN);
    const actions = (plan.decisions as Decision[]).map((d) => d.action);
    if (swap === "link") {
      assertEquals(actions, ["refuse", "refuse"]);
    } else {
      assertEquals(actions, ["accept", "accept"]);
      await sendFile(client, 2, second);
      assertEquals((await readAcks(client, 1)).map((a) => a.ok), [true]);
    }
    await client.send(FrameType.DONE, new Uint8Array(0));
    await expectFrame(client, FrameType.BYE);
  } finally {
    client.close();
    await server.close();
  }
  assertEquals(await snapshot(outside), before, "nothing may be written outside DIR");
  assertEquals(
    [...Deno.readDirSync(aside)].map((e) => e.name),
    ["a.bin"],
    "nor in the moved folder",
  );
  if (swap === "move") assertEquals(await Deno.readFile(join(dir, "sub", "new", "b.bin")), second);
}

for (const receiver of ["descriptors", "paths"] as const) {
  for (const swap of ["move", "link"] as const) {
    Deno.test({
      name: `a new folder announced in a folder the session holds open, after that folder was ` +
        `${
          swap === "move" ? "moved out of DIR" : "swapped for a link"
        } (placed through ${receiver}),` +
        ` is ${swap === "move" ? "made beneath DIR" : "refused"}, never made where it went`,
      ignore: Deno.build.os === "windows" || (receiver === "descriptors" && !native),
      async fn() {
        await using baseDir = await tempDir("ferry-race-");
        await newFolderInMoved(baseDir.path, receiver, swap);
      },
    });
  }
}
