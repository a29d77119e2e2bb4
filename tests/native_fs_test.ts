/**
 * The receiver's C-library file calls (src/server/native_fs.ts), the
 * placing rules through them and through Deno's API (native null): the same
 * results either way, and never a replaced name; and folder fsyncs.
 */
import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertMatch,
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
import { openFolders } from "../src/server/open_folders.ts";
import { CHECK_STANDS_MS, FOLDER_FDS } from "../src/server/beneath.ts";
import { statfs } from "node:fs/promises";
import { FsyncPace } from "../src/server/fsync_pace.ts";
import { LIBC_PATHS } from "../src/native/libc.ts";
import { loadNativeFs, type NativeFs } from "../src/server/native_fs.ts";
import { listTree, randomBytes, tempDir } from "./_harness.ts";
import { presentFiles } from "./_libraries.ts";

const native = loadNativeFs();
const linux = Deno.build.os === "linux";

async function withDir(fn: (dir: string) => Promise<void> | void): Promise<void> {
  await using tmp = await tempDir();
  const dir = tmp.path;
  await fn(dir);
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
    const present = presentFiles(LIBC_PATHS);
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
      assertEquals((badFd as Error & { code?: string }).code, "EBADF");
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
      `Folders.place() through the ${engine}: a taken name gets a number, or is skipped or refused`,
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
        const folders = openFolders(inbox);
        const first = await staged("one");
        assertEquals(await folders.place(first, dir, "a.txt", "rename"), "a (1).txt");
        const second = await staged("two");
        assertEquals(await folders.place(second, dir, "a.txt", "rename"), "a (2).txt");
        const skipped = await staged("three");
        assertEquals(await folders.place(skipped, dir, "a.txt", "skip"), null);
        assertEquals(await Deno.readTextFile(skipped), "three", "a skipped file stays staged");
        await Deno.remove(skipped);
        const refused = await staged("four");
        const err = await folders.place(refused, dir, "a.txt", "fail").catch((e) => e);
        assertInstanceOf(err, Refusal);
        await Deno.remove(refused);
        const fresh = await staged("five");
        assertEquals(await folders.place(fresh, dir, "b.txt", "fail"), "b.txt");
        assertEquals(await Deno.readTextFile(join(dir, "a.txt")), "old");
        assertEquals(await Deno.readTextFile(join(dir, "a (1).txt")), "one");
        assertEquals(await Deno.readTextFile(join(dir, "a (2).txt")), "two");
        assertEquals(await Deno.readTextFile(join(dir, "b.txt")), "five");
        assertEquals([...Deno.readDirSync(inbox.staging)], [], "nothing left in staging");
        assertEquals(folders.dirty, 1, "DIR's entries changed: it is to be fsynced");
        await folders.sync();
        assertEquals(folders.dirty, 0);
        folders.close();
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
    await using diskDir = await tempDir();
    const disk = diskDir.path;
    if (onTmpfs) {
      await using inMemory = await tempDir("ferry-test-", { dir: shm });
      assertEquals((await Inbox.open(inMemory.path)).writePiece, Infinity);
    }
    if (await typeOf(disk) !== 0x01021994) {
      assertEquals((await Inbox.open(disk)).writePiece, WRITE_PIECE_BYTES);
    }
  },
});

/**
 * How many descriptors below 1024 this process has open: those statx
 * answers for (/proc/self/fd needs more permissions than the tests have).
 */
function openFds(): number {
  const fs = lib();
  let open = 0;
  for (let fd = 0; fd < 1024; fd++) {
    try {
      fs.identify("", fd);
      open++;
    } catch { /* EBADF: not open */ }
  }
  return open;
}

Deno.test({
  name:
    "NativeFs.openFolder() and openFolderIfAny() never follow a link; makeFolder() and identify() act in the folder",
  ignore: native === null,
  async fn() {
    await withDir((dir) => {
      const fs = lib();
      Deno.mkdirSync(join(dir, "a"));
      Deno.symlinkSync(join(dir, "a"), join(dir, "link"));
      Deno.writeTextFileSync(join(dir, "f"), "x");
      const root = fs.openFolder(dir);
      const a = fs.openFolder("a", root);
      try {
        // A link is never followed, even to a folder: the kernel says it is no folder.
        assertInstanceOf(
          assertThrows(() => fs.openFolder("link", root)),
          Deno.errors.NotADirectory,
        );
        assertInstanceOf(assertThrows(() => fs.openFolder("f", root)), Deno.errors.NotADirectory);
        assertInstanceOf(assertThrows(() => fs.openFolder("none", root)), Deno.errors.NotFound);
        // openFolderIfAny: the same, but nothing there is null, not an error.
        assertEquals(fs.openFolderIfAny("none", root), null);
        assertInstanceOf(
          assertThrows(() => fs.openFolderIfAny("link", root)),
          Deno.errors.NotADirectory,
        );
        assertInstanceOf(
          assertThrows(() => fs.openFolderIfAny("f", root)),
          Deno.errors.NotADirectory,
        );
        const again = fs.openFolderIfAny("a", root) ?? -1;
        assert(again >= 0);
        assertEquals(fs.identify("", again)?.kind, "dir");
        fs.close(again);
        fs.makeFolder("b", root);
        assert(Deno.lstatSync(join(dir, "b")).isDirectory);
        assertInstanceOf(assertThrows(() => fs.makeFolder("b", root)), Deno.errors.AlreadyExists);
        assertInstanceOf(
          assertThrows(() => fs.makeFolder("link", root)),
          Deno.errors.AlreadyExists,
        );
        fs.makeFolder("c", a);
        assert(Deno.lstatSync(join(dir, "a", "c")).isDirectory, "made in the folder opened");

        assertEquals(fs.identify("link", root)?.kind, "link");
        assertEquals(fs.identify("f", root)?.kind, "file");
        assertEquals(fs.identify("a", root)?.kind, "dir");
        assertEquals(fs.identify("none", root), null);
        assertEquals(fs.identify(new TextEncoder().encode("a/c\0"), root)?.kind, "dir");
        const id = fs.identify("", a)!;
        assert(id.same(fs.identify("a", root)!), "the descriptor is the folder at its name");
        assert(!id.same(fs.identify("b", root)!));
        assert(id.sameAs(Deno.statSync(join(dir, "a"))), "the same folder as Deno's stat sees");
        assert(!id.sameAs(Deno.statSync(join(dir, "b"))));
        // A descriptor follows its folder when it is moved: its name now holds something else.
        Deno.renameSync(join(dir, "a"), join(dir, "moved"));
        Deno.mkdirSync(join(dir, "a"));
        assert(fs.identify("", a)!.same(fs.identify("moved", root)!));
        assert(!fs.identify("", a)!.same(fs.identify("a", root)!));
      } finally {
        fs.close(a);
        fs.close(root);
      }
    });
  },
});

Deno.test({
  name: "NativeFs names, links and removes files between folder descriptors, never through a link",
  ignore: native === null,
  async fn() {
    await withDir((dir) => {
      const fs = lib();
      const outside = join(dir, "outside");
      Deno.mkdirSync(outside);
      Deno.mkdirSync(join(dir, "from"));
      Deno.mkdirSync(join(dir, "to"));
      const from = fs.openFolder(join(dir, "from"));
      const to = fs.openFolder(join(dir, "to"));
      try {
        // The folder the descriptor holds is moved, and a link to outside takes its name.
        Deno.renameSync(join(dir, "to"), join(dir, "to-moved"));
        Deno.symlinkSync(outside, join(dir, "to"));
        const fd = fs.createExclusive("t", 0o600, from);
        fs.write(fd, new TextEncoder().encode("data"));
        fs.setMode(fd, 0o640);
        fs.close(fd);
        assertEquals(Deno.statSync(join(dir, "from", "t")).mode! & 0o777, 0o640);
        assertInstanceOf(
          assertThrows(() => fs.createExclusive("t", 0o600, from)),
          Deno.errors.AlreadyExists,
        );
        assertEquals(fs.renameNoReplace("t", "x", from, to), "renamed");
        assertEquals(Deno.readTextFileSync(join(dir, "to-moved", "x")), "data");
        Deno.writeTextFileSync(join(dir, "from", "u"), "other");
        assertEquals(fs.renameNoReplace("u", "x", from, to), "exists");
        assertEquals(fs.link("u", "x", from, to), false, "a link never replaces");
        assertEquals(fs.link("u", "y", from, to), true);
        assertEquals(Deno.readTextFileSync(join(dir, "to-moved", "y")), "other");
        fs.unlink("u", from);
        fs.rename("y", "x", to, to);
        assertEquals(Deno.readTextFileSync(join(dir, "to-moved", "x")), "other", "replaced");
        fs.unlink("x", to);
        assertInstanceOf(assertThrows(() => fs.unlink("x", to)), Deno.errors.NotFound);
        assertEquals([...Deno.readDirSync(outside)], [], "nothing went through the link");
        assertEquals([...Deno.readDirSync(join(dir, "to-moved"))], []);
      } finally {
        fs.close(from);
        fs.close(to);
      }
    });
  },
});

/** A staged file in `inbox`'s staging folder holding `text`. */
async function stage(inbox: Inbox, text: string): Promise<string> {
  const { path, file } = await inbox.createTemp();
  await file.write(new TextEncoder().encode(text));
  file.close();
  return path;
}

Deno.test({
  name: "BeneathFolders keeps at most FOLDER_FDS folders open, and closes them all at the end",
  ignore: native === null,
  async fn() {
    await withDir(async (dir) => {
      const inbox = await Inbox.open(dir, lib());
      const before = openFds();
      const folders = openFolders(inbox);
      let most = 0;
      for (let i = 0; i < 3 * FOLDER_FDS; i++) {
        const sub = await folders.ensure([`d${i}`, "e"]);
        assertEquals(await folders.place(await stage(inbox, `${i}`), sub, "f", "fail"), "f");
        most = Math.max(most, openFds() - before);
      }
      // DIR, its staging folder, and the cached folders; the test's own staging is closed.
      assert(most <= FOLDER_FDS + 2, `${most} descriptors open`);
      await folders.sync();
      assertEquals(folders.dirty, 0);
      for (let i = 0; i < 3 * FOLDER_FDS; i++) {
        assertEquals(await Deno.readTextFile(join(dir, `d${i}`, "e", "f")), `${i}`);
      }
      folders.close();
      assertEquals(openFds(), before, "every descriptor is closed");
    });
  },
});

Deno.test({
  name: "BeneathFolders refuses a file whose folder was moved, replaced or linked after ensure()",
  ignore: native === null,
  async fn() {
    await withDir(async (dir) => {
      const inbox = await Inbox.open(dir, lib());
      const folders = openFolders(inbox);
      await using elsewhereDir = await tempDir();
      const elsewhere = elsewhereDir.path;
      try {
        const moved = await folders.ensure(["moved"]);
        const replaced = await folders.ensure(["replaced"]);
        const deep = await folders.ensure(["top", "deep"]);
        const linked = await folders.ensure(["linked"]);
        Deno.renameSync(moved, join(elsewhere, "moved"));
        Deno.renameSync(replaced, join(elsewhere, "replaced"));
        Deno.mkdirSync(replaced);
        // The top of the path moved out and a link to it put in its place: the name still
        // reaches the same folder, but through a link.
        Deno.renameSync(join(dir, "top"), join(elsewhere, "top"));
        Deno.symlinkSync(join(elsewhere, "top"), join(dir, "top"));
        Deno.removeSync(linked);
        Deno.symlinkSync(elsewhere, linked);
        const cases: [string, RegExp][] = [
          [moved, /moved or removed/],
          [replaced, /replaced or moved/],
          [deep, /symbolic link/],
          [linked, /symbolic link/],
        ];
        for (const [folder, reason] of cases) {
          const temp = await stage(inbox, "secret");
          const err = await folders.place(temp, folder, "f", "rename").catch((e) => e);
          assertInstanceOf(err, Refusal, folder);
          assertMatch(err.message, reason);
          assertEquals(await Deno.readTextFile(temp), "secret", "still staged, for the caller");
          await Deno.remove(temp);
        }
        assertEquals((await listTree(elsewhere)).sort(), ["moved", "replaced", "top", "top/deep"]);
        assertEquals([...Deno.readDirSync(replaced)], [], "not the new folder either");
        // A folder put back in its place is walked to again, and the file lands.
        Deno.removeSync(join(dir, "top"));
        Deno.renameSync(join(elsewhere, "top"), join(dir, "top"));
        assertEquals(await folders.place(await stage(inbox, "ok"), deep, "f", "fail"), "f");
        assertEquals(await Deno.readTextFile(join(deep, "f")), "ok");
        await folders.sync();
      } finally {
        folders.close();
      }
    });
  },
});

Deno.test({
  name: "BeneathFolders fsyncs folders on the thread pool where fsyncs are slow, and sets metadata",
  ignore: native === null,
  async fn() {
    await withDir(async (dir) => {
      const inbox = await Inbox.open(dir, lib());
      (inbox as { fsyncPace: FsyncPace }).fsyncPace = new class extends FsyncPace {
        override inline(): boolean {
          return false;
        }
      }();
      const folders = openFolders(inbox);
      const a = await folders.ensure(["a"]);
      const b = await folders.ensure(["b"]);
      await folders.place(await stage(inbox, "1"), a, "f", "fail");
      await folders.place(await stage(inbox, "2"), b, "f", "fail");
      await folders.setMetadata(a, 0o750, 1_600_000_000_000);
      assertEquals(Deno.statSync(a).mode! & 0o777, 0o750);
      assertEquals(Deno.statSync(a).mtime?.getTime(), 1_600_000_000_000);
      // b's name now holds another folder: its own is fsynced through its descriptor.
      Deno.renameSync(b, join(dir, "b-old"));
      Deno.mkdirSync(b);
      assertEquals(folders.dirty, 3, "DIR, a and b");
      await folders.sync();
      assertEquals(folders.dirty, 0);
      folders.close();
    });
  },
});

Deno.test({
  name:
    "PathFolders (Deno's API) removes a file that landed outside DIR through a link swapped in after its check",
  ignore: Deno.build.os === "windows",
  async fn() {
    await withDir(async (dir) => {
      const inbox = await Inbox.open(dir, null);
      const folders = openFolders(inbox);
      await using outsideDir = await tempDir();
      const outside = outsideDir.path;
      const sub = await folders.ensure(["sub"]);
      const temp = await stage(inbox, "secret");
      Deno.removeSync(sub);
      Deno.symlinkSync(outside, sub);
      // The link comes right after the check before placing: the check sees a folder.
      inbox.existing = () => "dir";
      const err = await folders.place(temp, sub, "f", "rename").catch((e) => e);
      assertInstanceOf(err, Refusal);
      assertMatch(err.message, /removed again/);
      assertEquals([...Deno.readDirSync(outside)], [], "what landed outside is removed");
      assertEquals(await Deno.readTextFile(temp), "secret", "still staged, for the caller");
    });
  },
});

Deno.test({
  name: "NativeFs.look() gives a name's kind, size and mtime (ms) without following a link",
  ignore: native === null,
  async fn() {
    await withDir((dir) => {
      const fs = lib();
      Deno.writeFileSync(join(dir, "f"), new Uint8Array(1234));
      const when = new Date(1_717_171_717_123);
      Deno.utimeSync(join(dir, "f"), when, when);
      Deno.symlinkSync(join(dir, "f"), join(dir, "link"));
      const fd = fs.openFolder(dir);
      try {
        const file = fs.look("f", fd)!;
        assertEquals([file.id.kind, file.size, file.mtimeMs], ["file", 1234, 1_717_171_717_123]);
        assertEquals(fs.look("link", fd)!.id.kind, "link");
        assertEquals(fs.look("missing", fd), null);
      } finally {
        fs.close(fd);
      }
    });
  },
});

Deno.test({
  name: "NativeFs.isFolder() is true only for the same folder at the name, never through a link",
  ignore: native === null,
  async fn() {
    await withDir((dir) => {
      const fs = lib();
      Deno.mkdirSync(join(dir, "a"));
      Deno.mkdirSync(join(dir, "b"));
      Deno.writeFileSync(join(dir, "f"), new Uint8Array(1));
      Deno.symlinkSync(join(dir, "a"), join(dir, "link"));
      const fd = fs.openFolder(dir);
      const c = (name: string) => new TextEncoder().encode(`${name}\0`);
      try {
        const a = fs.identify("a", fd)!;
        assert(fs.isFolder(c("a"), fd, a));
        assert(!fs.isFolder(c("b"), fd, a), "another folder");
        assert(!fs.isFolder(c("link"), fd, a), "a link to it");
        assert(!fs.isFolder(c("f"), fd, fs.identify("f", fd)!), "a file");
        assert(!fs.isFolder(c("missing"), fd, a), "nothing");
        assert(!fs.isFolder(c("f/x"), fd, a), "a file on the way");
        Deno.renameSync(join(dir, "a"), join(dir, "moved"));
        Deno.mkdirSync(join(dir, "a"));
        assert(!fs.isFolder(c("a"), fd, a), "replaced");
        assert(fs.isFolder(c("moved"), fd, a), "moved, still the same folder");
      } finally {
        fs.close(fd);
      }
    });
  },
});

Deno.test({
  name:
    "NativeFs takes two names in one call, and a path too long for its buffer fails as the system says",
  ignore: native === null,
  async fn() {
    await withDir((dir) => {
      const fs = lib();
      const fd = fs.openFolder(dir);
      try {
        fs.close(fs.createExclusive("from", 0o600, fd));
        assertEquals(fs.renameNoReplace("from", "to", fd, fd), "renamed");
        assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["to"]);
        assert(fs.link("to", "other", fd, fd));
        assertEquals([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["other", "to"]);
        const long = `${"x/".repeat(2100)}f`;
        const err = assertThrows(() => fs.createExclusive(long, 0o600, fd));
        assertMatch(String(err), /os error 36/);
        assertEquals(fs.identify("to", fd)?.kind, "file", "the short name after the long one");
      } finally {
        fs.close(fd);
      }
    });
  },
});

Deno.test({
  name: "BeneathFolders.look() refuses a folder moved out of DIR since it was last checked",
  ignore: native === null,
  async fn() {
    await withDir(async (dir) => {
      const inbox = await Inbox.open(dir, lib());
      const folders = openFolders(inbox);
      await using elsewhereDir = await tempDir();
      try {
        const sub = await folders.ensure(["top", "sub"]);
        Deno.writeFileSync(join(sub, "f"), new Uint8Array(3));
        assertEquals((await folders.look(sub, "f"))?.size, 3);
        Deno.renameSync(join(dir, "top"), join(elsewhereDir.path, "top"));
        // A check from DIR down stands for a millisecond at most.
        await new Promise((resolve) => setTimeout(resolve, 5));
        const err = await folders.look(sub, "f").catch((e) => e);
        assertInstanceOf(err, Refusal);
        assertMatch(err.message, /moved or removed/);
      } finally {
        folders.close();
      }
    });
  },
});

Deno.test({
  name: "BeneathFolders checks a folder from DIR down once for a run of placements in it, " +
    "and again once CHECK_STANDS_MS has passed",
  ignore: native === null,
  async fn() {
    await withDir(async (dir) => {
      const nfs = lib();
      const inbox = await Inbox.open(dir, nfs);
      const folders = openFolders(inbox);
      await using elsewhereDir = await tempDir();
      let checks = 0;
      const isFolder = nfs.isFolder;
      nfs.isFolder = (...args) => {
        checks++;
        return isFolder.apply(nfs, args);
      };
      try {
        const sub = await folders.ensure(["top", "sub"]);
        const files = 50;
        const temps: string[] = [];
        for (let i = 0; i < files; i++) temps.push(await stage(inbox, `${i}`));
        const started = performance.now();
        for (let i = 0; i < files; i++) {
          assertEquals(await folders.place(temps[i]!, sub, `f${i}`, "fail"), `f${i}`);
        }
        const elapsed = performance.now() - started;
        // Two folders from DIR down, checked at most once per CHECK_STANDS_MS of placing.
        const most = 2 * (Math.floor(elapsed / CHECK_STANDS_MS) + 1);
        assert(checks <= most, `${checks} folder checks for ${files} files in ${elapsed} ms`);
        assert(checks >= 2);
        assertEquals(await Deno.readTextFile(join(sub, "f7")), "7");
        // Moved out of DIR: once the check no longer stands, the next file is refused.
        Deno.renameSync(join(dir, "top"), join(elsewhereDir.path, "top"));
        await new Promise((resolve) => setTimeout(resolve, 5 * CHECK_STANDS_MS));
        const temp = await stage(inbox, "secret");
        const err = await folders.place(temp, sub, "late", "fail").catch((e) => e);
        assertInstanceOf(err, Refusal);
        assertMatch(err.message, /moved or removed/);
        assertEquals(
          (await listTree(join(elsewhereDir.path, "top", "sub"))).includes("late"),
          false,
          "nothing lands in the folder moved out of DIR",
        );
        await Deno.remove(temp);
      } finally {
        delete (nfs as { isFolder?: unknown }).isFolder;
        folders.close();
      }
    });
  },
});

Deno.test({
  name: "NativeFs names files alike whether a name is ASCII, UTF-8 or ASCII after a longer one",
  ignore: native === null,
  async fn() {
    await withDir((dir) => {
      const fs = lib();
      const fd = fs.openFolder(dir);
      try {
        // Each name reuses the buffers the one before filled: nothing of it may remain.
        const names = ["a-much-longer-ascii-name.bin", "é-ü-名前.txt", "b", "x🙂y", "c.txt"];
        for (const name of names) fs.close(fs.createExclusive(name, 0o600, fd));
        assertEquals([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [...names].sort());
        assertEquals(fs.renameNoReplace("é-ü-名前.txt", "z", fd, fd), "renamed");
        assertEquals(fs.renameNoReplace("b", "名", fd, fd), "renamed");
        assertEquals(fs.identify("z", fd)?.kind, "file");
        assertEquals(fs.identify("名", fd)?.kind, "file");
        assertEquals(fs.identify("b", fd), null);
      } finally {
        fs.close(fd);
      }
    });
  },
});
