/**
 * The sender's C-library reads (src/native/native_read.ts): the bytes, and
 * a size and modification time equal to what Deno's stat reports for the
 * same file (the sender compares them with its listing, made by Deno's
 * lstat), at every precision the file system keeps.
 */
import { assertEquals, assertInstanceOf, assertStringIncludes, assertThrows } from "@std/assert";
import { join } from "node:path";
import { FileChanged, loadNativeReader, type NativeReader } from "../src/native/native_read.ts";
import { randomBytes, tempDir } from "./_harness.ts";

const native = loadNativeReader();

function reader(): NativeReader {
  if (native === null) throw new Error("no native reader");
  return native;
}

Deno.test({
  name: "loadNativeReader() loads where the test task permits the C library, and nothing else",
  ignore: Deno.build.os !== "linux",
  fn() {
    assertEquals(loadNativeReader(["/nonexistent/libc.so.6"]), null);
    assertEquals(loadNativeReader(["/usr/lib/x86_64-linux-gnu/libm.so.6"]), null);
  },
});

Deno.test({
  name: "NativeReader reads a file whole, and stats it as Deno does, nanoseconds and all",
  ignore: native === null,
  async fn() {
    await using tmp = await tempDir();
    const dir = tmp.path;
    const fs = reader();
    const path = join(dir, "f");
    const data = randomBytes(5000);
    await Deno.writeFile(path, data);
    const stamps = [
      "2023-11-14 22:13:20.123999999", // just under the next millisecond
      "2020-01-01 00:00:00.000900000",
      "1969-12-31 23:59:58.250500000", // before 1970: toward zero, as Deno
      "1969-12-31 23:59:59.999999999",
      "1970-01-01 00:00:00",
      "1901-12-14 20:45:52.5",
    ];
    for (const stamp of stamps) {
      const touched = await new Deno.Command("touch", { args: ["-d", `${stamp} UTC`, path] })
        .output();
      assertEquals(touched.code, 0, stamp);
      const fd = fs.open(path);
      try {
        const into = new Uint8Array(8192);
        let done = 0;
        for (let n; (n = fs.read(fd, into.subarray(done))) > 0;) done += n;
        assertEquals(into.subarray(0, done), data);
        const info = Deno.statSync(path);
        assertEquals(fs.stat(fd), { size: info.size, mtime: info.mtime!.getTime() }, stamp);
      } finally {
        fs.close(fd);
      }
    }
  },
});

Deno.test({
  name: "NativeReader throws what Deno's calls would: a vanished file, a folder",
  ignore: native === null,
  async fn() {
    await using tmp = await tempDir();
    const dir = tmp.path;
    const fs = reader();
    assertInstanceOf(assertThrows(() => fs.open(join(dir, "gone"))), Deno.errors.NotFound);
    const fd = fs.open(dir);
    try {
      const err = assertThrows(() => fs.read(fd, new Uint8Array(16)));
      assertInstanceOf(err, Deno.errors.IsADirectory);
      assertStringIncludes((err as Error).message, "(os error 21)");
      assertEquals((err as Error & { code?: string }).code, "EISDIR");
    } finally {
      fs.close(fd);
    }
  },
});

Deno.test({
  name:
    "NativeReader.open() never goes through a symbolic link: the file was replaced since listed",
  ignore: native === null,
  async fn() {
    await using tmp = await tempDir();
    const dir = tmp.path;
    await Deno.writeTextFile(join(dir, "target"), "secret");
    await Deno.symlink(join(dir, "target"), join(dir, "link"));
    const err = assertThrows(() => reader().open(join(dir, "link")));
    assertInstanceOf(err, FileChanged);
    assertEquals(err.message, "it changed after it was listed");
  },
});

Deno.test({
  name: "NativeReader lists a folder whole, a read at a time, and lstats its entries as Deno does",
  ignore: native === null || !native.lists,
  async fn() {
    await using tmp = await tempDir();
    const dir = tmp.path;
    const fs = reader();
    // More names than one 32 KiB read of the listing holds.
    const names = new Set<string>();
    for (let i = 0; i < 1500; i++) names.add(`file-${String(i).padStart(4, "0")}-ünïcödé-名前.txt`);
    for (const name of names) await Deno.writeFile(join(dir, name), randomBytes(100));
    await Deno.mkdir(join(dir, "sub"));
    await Deno.chmod(join(dir, "sub"), 0o750);
    await Deno.symlink("sub", join(dir, "link"));
    await new Deno.Command("touch", {
      args: ["-d", "2023-11-14 22:13:20.123999999 UTC", join(dir, "sub")],
    })
      .output();
    const fd = fs.openFolder(dir);
    const listed = new Map<string, boolean | null>();
    let reads = 0;
    try {
      for (let batch = fs.list(fd); batch.length > 0; batch = fs.list(fd)) {
        reads++;
        for (const dirent of batch) {
          assertEquals(dirent.utf8, undefined, dirent.name);
          assertEquals(listed.has(dirent.name), false, dirent.name);
          listed.set(dirent.name, dirent.isDirectory);
        }
      }
      assertEquals(reads > 1, true);
      assertEquals(new Set(listed.keys()), new Set([...names, "sub", "link"]));
      for (const name of ["sub", "link", [...names][7]!]) {
        const info = Deno.lstatSync(join(dir, name));
        const kind = info.isFile ? "file" : info.isDirectory ? "dir" : "link";
        assertEquals(fs.lstatAt(fd, name, join(dir, name)), {
          kind,
          size: info.size,
          mtime: info.mtime!.getTime(),
          mode: info.mode! & 0o7777,
        });
        if (listed.get(name) !== null) assertEquals(listed.get(name), kind === "dir", name);
      }
      assertThrows(() => fs.lstatAt(fd, "gone", join(dir, "gone")), Deno.errors.NotFound);
    } finally {
      fs.close(fd);
    }
    // A link where a folder was listed is not followed (Linux says ENOTDIR with O_NOFOLLOW).
    assertThrows(() => fs.openFolder(join(dir, "link")), Deno.errors.NotADirectory);
  },
});

Deno.test({
  name:
    "NativeReader.list() goes on past a read that holds only '.' and '..' (a signal cut it short)",
  ignore: native === null || !native.lists,
  async fn() {
    await using tmp = await tempDir();
    const names = [..."abcdefghijklmnopqrstuvwxyz"];
    for (const name of names) await Deno.writeFile(join(tmp.path, name), new Uint8Array(1));
    const fs = reader();
    const fd = fs.openFolder(tmp.path);
    try {
      // 24 bytes hold one record of a one-letter name: the reads that give "." and ".." hold no
      // entry, as a read the kernel ends early may. An empty list would mean the folder's end.
      const listed: string[] = [];
      for (let batch = fs.list(fd, 24); batch.length > 0; batch = fs.list(fd, 24)) {
        listed.push(...batch.map((dirent) => dirent.name));
      }
      assertEquals(listed.sort(), names);
    } finally {
      fs.close(fd);
    }
  },
});

Deno.test({
  name: "NativeReader lists a name that is not UTF-8 as Deno does, and says so",
  ignore: native === null || !native.lists,
  async fn() {
    await using tmp = await tempDir();
    const made = await new Deno.Command("sh", {
      args: ["-c", `touch "$(printf 'x\\377y')"`],
      cwd: tmp.path,
    }).output();
    assertEquals(made.code, 0);
    const fs = reader();
    const fd = fs.openFolder(tmp.path);
    try {
      assertEquals(fs.list(fd), [{ name: "x\ufffdy", isDirectory: false, utf8: false }]);
      assertEquals(fs.list(fd), []);
    } finally {
      fs.close(fd);
    }
    assertEquals([...Deno.readDirSync(tmp.path)].map((e) => e.name), ["x\ufffdy"]);
  },
});

Deno.test({
  name: "NativeReader takes a path longer than its C-string buffer, and fails as the system does",
  ignore: native === null,
  async fn() {
    await using tmp = await tempDir();
    const fs = reader();
    const path = join(tmp.path, "f");
    await Deno.writeFile(path, new Uint8Array([1, 2, 3]));
    // The same file through a path of more than 4096 bytes: "./" repeated, then the real path.
    const long = `${tmp.path}/${"./".repeat(2100)}f`;
    assertThrows(() => fs.open(long), Error, "os error 36");
    const fd = fs.open(path); // the short path still works after the long one
    try {
      assertEquals(fs.stat(fd).size, 3);
    } finally {
      fs.close(fd);
    }
  },
});
