/**
 * The receiver's C-library file calls (src/server/native_fs.ts), the
 * placing rules through them and through Deno's API (native null): the same
 * results either way, and never a replaced name; and folder fsyncs.
 */
import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { join } from "node:path";
import {
  childPath,
  Inbox,
  Refusal,
  storageRefusal,
  syncDirs,
  WRITE_PIECE_BYTES,
} from "../src/server/inbox.ts";
import { statfs } from "node:fs/promises";
import { FsyncPace } from "../src/server/fsync_pace.ts";
import { LIBC_PATHS } from "../src/native/libc.ts";
import { loadNativeFs, type NativeFs } from "../src/server/native_fs.ts";
import { randomBytes, tempDir } from "./_harness.ts";

const native = loadNativeFs();
const linux = Deno.build.os === "linux";

async function withDir(fn: (dir: string) => Promise<void> | void): Promise<void> {
  const dir = await tempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** `native`, or a failed assertion: where the test task grants libc, it must load. */
function lib(): NativeFs {
  if (native === null) throw new Error("no native calls");
  return native;
}

Deno.test({
  name: "loadNativeFs() loads the C library the test task permits, and nothing else",
  ignore: !linux,
  fn() {
    const present = LIBC_PATHS.filter((path) => {
      try {
        return Deno.statSync(path).isFile;
      } catch {
        return false;
      }
    });
    assertEquals(native !== null, present.length > 0);
    assertEquals(loadNativeFs(["/nonexistent/libc.so.6"]), null);
    // A real library, but not one ffi permission covers: never loaded, never prompted.
    assertEquals(loadNativeFs(["/usr/lib/x86_64-linux-gnu/libm.so.6"]), null);
  },
});

Deno.test({
  name: "NativeFs writes a new file byte for byte with its mtime, and refuses an existing name",
  ignore: native === null,
  async fn() {
    await withDir((dir) => {
      const fs = lib();
      const data = randomBytes(70_000);
      for (const mtime of [1_700_000_000_123, -1_500, 0]) {
        const path = join(dir, `f${mtime}`);
        const fd = fs.createExclusive(path, 0o600);
        fs.write(fd, data);
        fs.setTimes(fd, mtime);
        fs.fsync(fd);
        fs.close(fd);
        assertEquals(Deno.readFileSync(path), data);
        const info = Deno.statSync(path);
        assertEquals(info.mtime?.getTime(), mtime);
        assertEquals(info.mode! & 0o777, 0o600);
        const again = assertThrows(() => fs.createExclusive(path, 0o600));
        assertInstanceOf(again, Deno.errors.AlreadyExists);
        assertEquals(Deno.readFileSync(path), data, "the existing file is untouched");
      }
    });
  },
});

Deno.test({
  name: "NativeFs throws what Deno's API would, so storageRefusal() reads it the same",
  ignore: native === null,
  async fn() {
    await withDir((dir) => {
      const fs = lib();
      Deno.writeTextFileSync(join(dir, "file"), "x");
      assertInstanceOf(
        assertThrows(() => fs.createExclusive(join(dir, "missing", "f"), 0o600)),
        Deno.errors.NotFound,
      );
      const notDir = assertThrows(() => fs.createExclusive(join(dir, "file", "f"), 0o600));
      assertInstanceOf(notDir, Deno.errors.NotADirectory);
      assertEquals(storageRefusal(notDir).message, "a file is in the way of a directory");
      const badFd = assertThrows(() => fs.write(-1, new Uint8Array(1)));
      assertStringIncludes((badFd as Error).message, "(os error 9)");
      assertInstanceOf(assertThrows(() => fs.unlink(join(dir, "nothing"))), Deno.errors.NotFound);
    });
  },
});

Deno.test({
  name: "NativeFs.renameNoReplace() never replaces a file, a directory or a link",
  ignore: native === null,
  async fn() {
    await withDir((dir) => {
      const fs = lib();
      const from = join(dir, "from");
      Deno.writeTextFileSync(from, "new");
      Deno.writeTextFileSync(join(dir, "file"), "old");
      Deno.mkdirSync(join(dir, "dir"));
      Deno.symlinkSync(join(dir, "nowhere"), join(dir, "link"));
      for (const taken of ["file", "dir", "link"]) {
        assertEquals(fs.renameNoReplace(from, join(dir, taken)), "exists", taken);
      }
      assertEquals(Deno.readTextFileSync(join(dir, "file")), "old");
      assertEquals(Deno.readLinkSync(join(dir, "link")), join(dir, "nowhere"));
      assertEquals([...Deno.readDirSync(join(dir, "dir"))], []);
      assertEquals(Deno.readTextFileSync(from), "new", "nothing moved");
      assertEquals(fs.renameNoReplace(from, join(dir, "free")), "renamed");
      assertEquals(Deno.readTextFileSync(join(dir, "free")), "new");
      assertInstanceOf(assertThrows(() => Deno.lstatSync(from)), Deno.errors.NotFound);
    });
  },
});

for (const [engine, calls] of [["C library", native], ["Deno API", null]] as const) {
  Deno.test({
    name:
      `Inbox.place() through the ${engine}: a taken name gets a number, or is skipped or refused`,
    ignore: engine === "C library" && native === null,
    async fn() {
      await withDir(async (dir) => {
        const inbox = await Inbox.open(dir, calls);
        assertEquals(inbox.native, calls);
        await Deno.writeTextFile(join(dir, "a.txt"), "old");
        const staged = async (text: string) => {
          const { path, file } = await inbox.createTemp();
          await file.write(new TextEncoder().encode(text));
          file.close();
          return path;
        };
        const dirty = new Set<string>();
        const first = await staged("one");
        assertEquals(await inbox.place(first, dir, "a.txt", "rename", dirty), "a (1).txt");
        const second = await staged("two");
        assertEquals(await inbox.place(second, dir, "a.txt", "rename", dirty), "a (2).txt");
        const skipped = await staged("three");
        assertEquals(await inbox.place(skipped, dir, "a.txt", "skip", dirty), null);
        assertEquals(await Deno.readTextFile(skipped), "three", "a skipped file stays staged");
        await Deno.remove(skipped);
        const refused = await staged("four");
        const err = await inbox.place(refused, dir, "a.txt", "fail", dirty).catch((e) => e);
        assertInstanceOf(err, Refusal);
        await Deno.remove(refused);
        const fresh = await staged("five");
        assertEquals(await inbox.place(fresh, dir, "b.txt", "fail", dirty), "b.txt");
        assertEquals(await Deno.readTextFile(join(dir, "a.txt")), "old");
        assertEquals(await Deno.readTextFile(join(dir, "a (1).txt")), "one");
        assertEquals(await Deno.readTextFile(join(dir, "a (2).txt")), "two");
        assertEquals(await Deno.readTextFile(join(dir, "b.txt")), "five");
        assertEquals([...Deno.readDirSync(inbox.staging)], [], "nothing left in staging");
        assert(dirty.has(dir));
      });
    },
  });
}

Deno.test("syncDirs() fsyncs every folder, and a missing one fails it without leaving a handle open", async () => {
  await withDir(async (dir) => {
    const dirs = Array.from({ length: 150 }, (_, i) => join(dir, `d${i}`));
    for (const d of dirs) await Deno.mkdir(d);
    for (const inline of [true, false]) {
      const pace = new class extends FsyncPace {
        override inline(): boolean {
          return inline;
        }
      }();
      await syncDirs(dirs, pace);
      const missing = [...dirs.slice(0, 70), join(dir, "gone"), ...dirs.slice(70)];
      const err = await syncDirs(missing, pace).catch((e) => e);
      assertInstanceOf(err, Deno.errors.NotFound);
    }
    // The test's resource sanitizer fails it if a directory handle was left open.
  });
});

Deno.test("childPath() is join() for a normalized folder and a checked name", () => {
  for (const dir of ["/", "/srv", "/srv/in box", "/a/b/ü"]) {
    for (const name of ["f", "f.txt", "é b", ".hidden", "x..y"]) {
      assertEquals(childPath(dir, name), join(dir, name), `${dir} + ${name}`);
    }
  }
});

Deno.test({
  name: "Inbox.open() writes large files in pieces on disk, in one write per chunk on tmpfs",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const typeOf = async (path: string) => Number((await statfs(path)).type);
    const shm = "/dev/shm";
    const onTmpfs = await typeOf(shm).then((t) => t === 0x01021994).catch(() => false);
    const disk = await tempDir();
    try {
      if (onTmpfs) {
        const dir = await Deno.makeTempDir({ dir: shm });
        try {
          assertEquals((await Inbox.open(dir)).writePiece, Infinity);
        } finally {
          await Deno.remove(dir, { recursive: true });
        }
      }
      if (await typeOf(disk) !== 0x01021994) {
        assertEquals((await Inbox.open(disk)).writePiece, WRITE_PIECE_BYTES);
      }
    } finally {
      await Deno.remove(disk, { recursive: true });
    }
  },
});
