/**
 * The small-file path (src/server/small_file.ts): the staged file gets the
 * sender's permission bits (as far as they are kept) whatever the
 * receiver's umask, with a chmod only where the umask took some away.
 */
import { assert, assertEquals } from "@std/assert";
import { loadDigest } from "../src/protocol/digests.ts";
import { Inbox } from "../src/server/inbox.ts";
import { openFolders } from "../src/server/open_folders.ts";
import { SmallFile, StagedFile, UnnamedFile } from "../src/server/small_file.ts";
import { loadNativeFs, type NativeFs } from "../src/server/native_fs.ts";
import { randomBytes, tempDir } from "./_harness.ts";
import { fsyncsInPlace } from "./_fsyncs_in_place.ts";
import { FsyncPace } from "../src/server/fsync_pace.ts";
import { writeAllSync, writeInPieces } from "../src/server/incoming_file.ts";
import { type ConflictPolicy, storageRefusal, WRITE_PIECE_BYTES } from "../src/server/inbox.ts";
import { join } from "node:path";

const posix = Deno.build.os !== "windows";

/** Runs `fn` with the process's umask set to `mask`, then restores it. */
async function withUmask<T>(mask: number, fn: () => Promise<T>): Promise<T> {
  const before = Deno.umask(mask);
  try {
    return await fn();
  } finally {
    Deno.umask(before);
  }
}

/**
 * Stages one small file of mode `mode` in a fresh inbox, through the C
 * library's calls (unnamed in its folder, or by name in the staging folder
 * with `unnamed` false) or Deno's (`native` null), and places it; returns
 * its mode on disk.
 */
async function stagedMode(mode: number, native: NativeFs | null, unnamed = true): Promise<number> {
  await using tmp = await tempDir();
  const dir = tmp.path;
  const inbox = fsyncsInPlace(await Inbox.open(dir, native));
  if (!unnamed) inbox.unnamedFiles = false;
  const data = randomBytes(3000);
  const small = new SmallFile();
  small.begin({ id: 0, path: "f", kind: "file", size: data.length, mtime: 0, mode });
  small.add(data);
  const xxh128 = await loadDigest("xxh128");
  const end = { id: 0, length: data.length, digest: xxh128.of(data) };
  const folders = openFolders(inbox);
  try {
    const staged = small.stage(end, folders, xxh128, dir, "fail");
    // The C library's path leaves it synced; Deno's keeps it open for its fsync.
    assertEquals(
      staged instanceof UnnamedFile || (staged instanceof StagedFile && staged.file === null),
      native !== null,
    );
    assertEquals(staged instanceof UnnamedFile, native !== null && unnamed);
    assertEquals(await staged.place(folders, dir, "f", "fail"), "f");
    assertEquals(await Deno.readFile(join(dir, "f")), data);
    return (await Deno.stat(join(dir, "f"))).mode! & 0o7777;
  } finally {
    folders.close();
  }
}

Deno.test({
  name:
    "SmallFile.stage() keeps the sender's mode under umask 022 and 077, through each set of calls",
  ignore: !posix,
  fn: async () => {
    const native = loadNativeFs();
    const ways = native === null ? [[null, false] as const] : [
      [native, true] as const,
      [native, false] as const,
      [null, false] as const,
    ];
    for (const [calls, unnamed] of ways) {
      for (const mask of [0o022, 0o077, 0o027]) {
        const what = `umask ${mask.toString(8)}, ${
          calls === null ? "Deno API" : unnamed ? "C library, unnamed" : "C library"
        }`;
        await withUmask(mask, async () => {
          assertEquals(await stagedMode(0o755, calls, unnamed), 0o755, what);
          assertEquals(await stagedMode(0o644, calls, unnamed), 0o644, what);
          assertEquals(await stagedMode(0o600, calls, unnamed), 0o600, what);
          // Bits a receiver never keeps (setuid, group/other write), and owner read/write added.
          assertEquals(await stagedMode(0o4777, calls, unnamed), 0o755, what);
          assertEquals(await stagedMode(0o044, calls, unnamed), 0o644, what);
        });
      }
    }
  },
});

Deno.test({
  name: "Inbox.createTempSync() asks for a chmod only where the umask took bits away",
  ignore: !posix,
  fn: async () => {
    await using tmp = await tempDir();
    const dir = tmp.path;
    for (
      const [mask, mode, chmod] of [
        [0o022, 0o755, false],
        [0o022, 0o644, false],
        [0o077, 0o644, true],
        [0o077, 0o600, false],
        [0o027, 0o750, false],
        [0o027, 0o755, true],
      ] as const
    ) {
      await withUmask(mask, async () => {
        const inbox = await Inbox.open(dir);
        const temp = inbox.createTempSync(mode);
        temp.file.close();
        assertEquals(temp.chmod, chmod, `umask ${mask.toString(8)}, mode ${mode.toString(8)}`);
        if (!chmod) assertEquals((await Deno.stat(temp.path)).mode! & 0o777, mode);
        await Deno.remove(temp.path);
      });
    }
  },
});

Deno.test("SmallFile.stage() asks the fsync pace once per file, whichever calls it makes", async () => {
  await using tmp = await tempDir();
  const dir = tmp.path;
  const native = loadNativeFs();
  for (const calls of native === null ? [null] : [native, null]) {
    for (const inline of [true, false]) {
      const inbox = await Inbox.open(dir, calls);
      let asked = 0;
      const pace = new class extends FsyncPace {
        override inline(): boolean {
          asked++;
          return inline;
        }
      }();
      (inbox as { fsyncPace: FsyncPace }).fsyncPace = pace;
      const folders = openFolders(inbox);
      const sha256 = await loadDigest("sha256");
      for (let i = 0; i < 3; i++) {
        const data = randomBytes(100 + i);
        const small = new SmallFile();
        small.begin({
          id: i,
          path: `f${i}`,
          kind: "file",
          size: data.length,
          mtime: 0,
          mode: 0o644,
        });
        small.add(data);
        const staged = small.stage(
          { id: i, length: data.length, digest: sha256.of(data) },
          folders,
          sha256,
          dir,
          "fail",
        );
        const name = await staged.place(
          folders,
          dir,
          `f${i}-${inline}-${calls !== null}`,
          "fail",
        );
        assertEquals(await Deno.readFile(join(dir, name!)), data);
      }
      folders.close();
      assertEquals(asked, 3, `inline ${inline}, ${calls === null ? "Deno API" : "C library"}`);
    }
  }
});

Deno.test("writeInPieces() writes every byte in order, no call over WRITE_PIECE_BYTES, through short writes", async () => {
  const data = randomBytes(WRITE_PIECE_BYTES * 3 + 12_345);
  const sizes: number[] = [];
  const out = new Uint8Array(data.length);
  let at = 0;
  const file = {
    write(p: Uint8Array): Promise<number> {
      sizes.push(p.length);
      const n = sizes.length % 3 === 0 ? Math.ceil(p.length / 2) : p.length; // some short writes
      out.set(p.subarray(0, n), at);
      at += n;
      return Promise.resolve(n);
    },
  };
  await writeInPieces(file, data);
  assertEquals(out, data);
  assertEquals(at, data.length);
  assertEquals(Math.max(...sizes), WRITE_PIECE_BYTES);
});

Deno.test("writeInPieces() fails instead of looping when a write writes nothing", async () => {
  const file = { write: () => Promise.resolve(0) };
  const err = await writeInPieces(file, new Uint8Array(10)).catch((e) => e);
  assertEquals(err instanceof Error && err.message.includes("wrote nothing"), true);
});

Deno.test("writeAllSync() writes every byte in order through short writes and in pieces, and fails on a write of nothing", () => {
  const data = randomBytes(3 * 1024 * 1024 + 77);
  const out = new Uint8Array(data.length);
  let at = 0;
  let calls = 0;
  writeAllSync({
    writeSync(p: Uint8Array): number {
      const n = ++calls % 2 === 0 ? Math.ceil(p.length / 3) : Math.min(p.length, 1024 * 1024);
      out.set(p.subarray(0, n), at);
      at += n;
      return n;
    },
  }, data);
  assertEquals(out, data);
  assertEquals(at, data.length);
  const sizes: number[] = [];
  const pieced = new Uint8Array(data.length);
  let to = 0;
  writeAllSync(
    {
      writeSync(p: Uint8Array): number {
        sizes.push(p.length);
        pieced.set(p, to);
        to += p.length;
        return p.length;
      },
    },
    data,
    WRITE_PIECE_BYTES,
  );
  assertEquals(pieced, data);
  assertEquals(Math.max(...sizes), WRITE_PIECE_BYTES);
  const err = (() => {
    try {
      writeAllSync({ writeSync: () => 0 }, new Uint8Array(10));
    } catch (e) {
      return e;
    }
  })();
  assertEquals(err instanceof Error && err.message.includes("wrote nothing"), true);
});

Deno.test("storageRefusal() names a full disk, an exceeded quota and a file too large, and passes other errors on", () => {
  // Errors as Deno throws them: ENOSPC and EROFS with their `code`; EDQUOT and EFBIG, which Deno
  // names neither by class nor by code, with only their number in the message.
  const osError = (message: string, code?: string) =>
    code === undefined ? new Error(message) : Object.assign(new Error(message), { code });
  const refusal = (message: string, code?: string) => storageRefusal(osError(message, code));
  assertEquals(
    refusal("No space left on device (os error 28)", "ENOSPC").message,
    "the receiver's disk is full",
  );
  const edquot = Deno.build.os === "linux" ? 122 : 69;
  assertEquals(
    refusal(`Disk quota exceeded (os error ${edquot})`).message,
    "the receiver's disk quota is exceeded",
  );
  assertEquals(
    refusal("File too large (os error 27)").message,
    "too large for the receiver's file system",
  );
  assertEquals(
    refusal("Read-only file system (os error 30): open 'x'", "EROFS").message,
    "the receiver's file system is read-only",
  );
  const other = osError("Input/output error (os error 5)", "EIO");
  assertEquals(storageRefusal(other), other);
  // The wording alone decides nothing.
  const worded = new Error("No space left on device");
  assertEquals(storageRefusal(worded), worded);
});

Deno.test("storageRefusal() reads Deno's own error for a name too long", async () => {
  // (A full disk, Deno's real ENOSPC, is disk_faults_test.ts's.)
  await using tmp = await tempDir();
  const dir = tmp.path;
  let err: unknown = null;
  try {
    await Deno.writeTextFile(join(dir, "n".repeat(300)), "x");
  } catch (e) {
    err = e;
  }
  assertEquals(storageRefusal(err).message, "name too long for the receiver's file system");
});

Deno.test({
  name: "StagedFile.place() names a file synced in place at once (no promise) where its folder " +
    "is open, and through a promise where it is not or where its fsync may still run",
  ignore: loadNativeFs() === null,
  async fn() {
    await using tmp = await tempDir();
    const xxh128 = await loadDigest("xxh128");
    const stageOne = (
      folders: ReturnType<typeof openFolders>,
      name: string,
      dir: string,
      policy: ConflictPolicy,
    ) => {
      const data = new TextEncoder().encode(name);
      const small = new SmallFile();
      small.begin({ id: 0, path: name, kind: "file", size: data.length, mtime: 0, mode: 0o644 });
      small.add(data);
      const end = { id: 0, length: data.length, digest: xxh128.of(data) };
      return small.stage(end, folders, xxh128, dir, policy);
    };
    for (
      const [native, unnamed] of [[loadNativeFs(), true], [loadNativeFs(), false], [
        null,
        false,
      ]] as const
    ) {
      const dir = join(tmp.path, native === null ? "deno" : unnamed ? "unnamed" : "native");
      await Deno.mkdir(dir);
      const inbox = fsyncsInPlace(await Inbox.open(dir, native));
      if (!unnamed) inbox.unnamedFiles = false;
      const folders = openFolders(inbox);
      try {
        const sub = await folders.ensure(["sub"]);
        const now = stageOne(folders, "now", sub, "rename").place(folders, sub, "now", "rename");
        // Deno's calls: its fsync may run on the thread pool, so placing waits for it.
        assertEquals(now instanceof Promise, native === null);
        assertEquals(await now, "now");
        // A folder not open yet (not ensured in this session) is walked to: that may wait.
        const other = await Deno.makeTempDir({ dir });
        const later = stageOne(folders, "later", other, "rename").place(
          folders,
          other,
          "later",
          "rename",
        );
        assert(later instanceof Promise);
        assertEquals(await later, "later");
        // A taken name under "skip": null at once, and the staged file is gone.
        const skipped = stageOne(folders, "now", sub, "skip");
        const result = skipped.place(folders, sub, "now", "skip");
        assertEquals(await result, null);
        assertEquals(result === null, native !== null);
        assertEquals(await Deno.readTextFile(join(sub, "now")), "now");
        assertEquals(await Deno.readTextFile(join(other, "later")), "later");
        assertEquals([...Deno.readDirSync(join(dir, ".ferry", "tmp"))], [], "nothing left staged");
      } finally {
        folders.close();
      }
    }
  },
});
