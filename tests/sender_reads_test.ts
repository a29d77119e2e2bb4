/**
 * The sender's reads of small files (src/client/small_reads.ts): each opened
 * by name in its folder, one folder open at a time, what changed since the
 * listing refused; and the walk and the file sender giving the same with the
 * C library as with Deno's API (a process without the ffi permission).
 */
import { assertEquals, assertInstanceOf, assertThrows } from "@std/assert";
import { join } from "node:path";
import { loadNativeReader, type NativeReader } from "../src/native/native_read.ts";
import { SmallReads } from "../src/client/small_reads.ts";
import type { LocalEntry } from "../src/client/walk.ts";
import { randomBytes, tempDir } from "./_harness.ts";
import { type WalkAndSend, walkAndSend } from "./_sender_reads.ts";

const native = loadNativeReader();

/** The entry the walk would list for `path`. */
function listedAt(path: string): LocalEntry {
  const info = Deno.lstatSync(path);
  return {
    path,
    source: path,
    kind: "file",
    size: info.size,
    mtime: info.mtime!.getTime(),
    mode: 0o644,
  };
}

/** `native`'s calls that SmallReads makes, keeping the descriptors open and the folders opened. */
function counted(): { reads: NativeReader; open: Set<number>; folders: string[] } {
  const real = native!;
  const open = new Set<number>();
  const folders: string[] = [];
  const opened = (fd: number) => (open.add(fd), fd);
  const reads = {
    open: (path: string) => opened(real.open(path)),
    openFolder: (path: string) => (folders.push(path), opened(real.openFolder(path))),
    openIn: (dir: number, name: string, path: string) => opened(real.openIn(dir, name, path)),
    read: (fd: number, into: Uint8Array) => real.read(fd, into),
    stat: (fd: number) => real.stat(fd),
    close: (fd: number) => (open.delete(fd), real.close(fd)),
  };
  return { reads: reads as unknown as NativeReader, open, folders };
}

Deno.test({
  name: "SmallReads reads the files of folders in turn whole, keeping one folder open",
  ignore: native === null,
  async fn() {
    await using tmp = await tempDir();
    const files: [string, Uint8Array][] = [];
    for (const folder of ["a", "b", "a"]) {
      await Deno.mkdir(tmp.join(folder), { recursive: true });
      for (let i = 0; i < 3; i++) {
        const path = tmp.join(folder, `${files.length}`);
        const data = randomBytes(100 + files.length);
        await Deno.writeFile(path, data);
        files.push([path, data]);
      }
    }
    const calls = counted();
    const reads = new SmallReads(calls.reads);
    for (const [path, data] of files) {
      const room = new Uint8Array(data.length);
      assertEquals(reads.readWhole(path, room, listedAt(path)), null);
      assertEquals(room, data);
      assertEquals(calls.open.size, 1, "its folder, and no file, stays open");
    }
    assertEquals(calls.folders, [tmp.join("a"), tmp.join("b"), tmp.join("a")]);
    reads.close();
    assertEquals(calls.open.size, 0);
  },
});

Deno.test({
  name:
    "SmallReads refuses what changed since the listing: a file or its folder swapped for a link",
  ignore: native === null,
  async fn() {
    await using tmp = await tempDir();
    const reads = new SmallReads(native!);
    try {
      await Deno.mkdir(tmp.join("d"));
      await Deno.mkdir(tmp.join("elsewhere"));
      const file = tmp.join("d", "f");
      await Deno.writeFile(file, randomBytes(64));
      await Deno.writeFile(tmp.join("elsewhere", "f"), randomBytes(64));
      const entry = listedAt(file);
      const room = new Uint8Array(64);
      // The file becomes a link to another of the same size and time.
      await Deno.rename(file, tmp.join("d", "was"));
      await Deno.symlink(tmp.join("elsewhere", "f"), file);
      assertEquals(reads.readWhole(file, room, entry), "it changed after it was listed");
      // Its folder becomes a link to a folder holding a file by its name.
      reads.close();
      await Deno.rename(tmp.join("d"), tmp.join("d-was"));
      await Deno.symlink(tmp.join("elsewhere"), tmp.join("d"));
      const there = listedAt(tmp.join("elsewhere", "f"));
      assertEquals(
        reads.readWhole(file, room, { ...there, source: file }),
        "it changed after it was listed",
      );
    } finally {
      reads.close();
    }
  },
});

Deno.test({
  name: "SmallReads reads a file named on the command line through a folder that is a link",
  ignore: native === null,
  async fn() {
    await using tmp = await tempDir();
    const reads = new SmallReads(native!);
    try {
      await Deno.mkdir(tmp.join("real"));
      const data = randomBytes(64);
      await Deno.writeFile(tmp.join("real", "f"), data);
      await Deno.symlink(tmp.join("real"), tmp.join("home"));
      const file = tmp.join("home", "f");
      // The walk names a command-line file by its own name: no folder of it was listed.
      const room = new Uint8Array(64);
      assertEquals(reads.readWhole(file, room, { ...listedAt(file), path: "f" }), null);
      assertEquals(room, data);
      // A link at the file's own name is still refused.
      await Deno.symlink(tmp.join("real", "f"), tmp.join("real", "g"));
      const link = tmp.join("real", "g");
      assertEquals(
        reads.readWhole(link, room, { ...listedAt(file), path: "g", source: link }),
        "it changed after it was listed",
      );
    } finally {
      reads.close();
    }
  },
});

Deno.test({
  name: "SmallReads reads from the folder it opened even once a link takes its name",
  ignore: native === null,
  async fn() {
    await using tmp = await tempDir();
    const reads = new SmallReads(native!);
    try {
      await Deno.mkdir(tmp.join("d"));
      await Deno.mkdir(tmp.join("elsewhere"));
      const first = randomBytes(32);
      const second = randomBytes(32);
      await Deno.writeFile(tmp.join("d", "1"), first);
      await Deno.writeFile(tmp.join("d", "2"), second);
      await Deno.writeFile(tmp.join("elsewhere", "2"), randomBytes(32));
      const entries = [listedAt(tmp.join("d", "1")), listedAt(tmp.join("d", "2"))];
      const room = new Uint8Array(32);
      assertEquals(reads.readWhole(entries[0]!.source!, room, entries[0]!), null);
      assertEquals(room, first);
      await Deno.rename(tmp.join("d"), tmp.join("d-was"));
      await Deno.symlink(tmp.join("elsewhere"), tmp.join("d"));
      assertEquals(reads.readWhole(entries[1]!.source!, room, entries[1]!), null);
      assertEquals(room, second, "the listed file, not the link's");
    } finally {
      reads.close();
    }
  },
});

Deno.test({
  name: "SmallReads throws what Deno's open would for a file or folder that vanished",
  ignore: native === null,
  async fn() {
    await using tmp = await tempDir();
    const reads = new SmallReads(native!);
    try {
      await Deno.mkdir(tmp.join("d"));
      const file = tmp.join("d", "f");
      await Deno.writeFile(file, randomBytes(8));
      const entry = listedAt(file);
      await Deno.remove(file);
      const room = new Uint8Array(8);
      assertInstanceOf(
        assertThrows(() => reads.readWhole(file, room, entry)),
        Deno.errors.NotFound,
      );
      await Deno.remove(tmp.join("d"));
      reads.close();
      assertInstanceOf(
        assertThrows(() => reads.readWhole(file, room, entry)),
        Deno.errors.NotFound,
      );
    } finally {
      reads.close();
    }
  },
});

Deno.test({
  name: "the walk and the file sender give the same with the C library and without ffi",
  ignore: native === null,
  async fn() {
    await using tmp = await tempDir();
    const root = tmp.join("tree");
    for (const dir of ["", "sub", "sub/deeper", "other", ".ferry/tmp", "nested/.ferry"]) {
      await Deno.mkdir(join(root, dir), { recursive: true });
    }
    await Deno.writeFile(join(root, "a.txt"), randomBytes(10));
    await Deno.writeFile(join(root, "empty"), new Uint8Array(0));
    await Deno.writeFile(join(root, "sub", "b.bin"), randomBytes(5000));
    await Deno.writeFile(join(root, "sub", "café ☕"), randomBytes(33));
    await Deno.writeFile(join(root, "sub", "deeper", "c"), randomBytes(70_000));
    await Deno.writeFile(join(root, "other", "big"), randomBytes(2 * 1024 * 1024 + 3));
    await Deno.writeFile(join(root, "nested", ".ferry", "kept"), randomBytes(7));
    await Deno.writeFile(join(root, ".ferry", "tmp", "never"), randomBytes(7));
    await Deno.symlink(join(root, "a.txt"), join(root, "sub", "link"));
    const withLibrary = await walkAndSend(root);
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        "--no-prompt",
        "--allow-read",
        new URL("./_sender_reads.ts", import.meta.url).pathname,
        root,
      ],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    assertEquals(out.code, 0);
    const withoutFfi: WalkAndSend = JSON.parse(new TextDecoder().decode(out.stdout));
    assertEquals([withLibrary.native, withoutFfi.native], [true, false]);
    assertEquals(withoutFfi.outcomes, withLibrary.outcomes);
    assertEquals(
      withLibrary.outcomes.map((o) => `${o.item} ${o.path}${o.abort ? ` ${o.abort}` : ""}`),
      [
        "dir tree",
        "file tree/a.txt",
        "file tree/empty",
        "dir tree/nested",
        "dir tree/nested/.ferry",
        "file tree/nested/.ferry/kept",
        "dir tree/other",
        "file tree/other/big",
        "dir tree/sub",
        "file tree/sub/b.bin",
        "file tree/sub/café ☕",
        "dir tree/sub/deeper",
        "file tree/sub/deeper/c",
        "skipped tree/sub/link",
      ],
    );
    for (const o of withLibrary.outcomes) {
      if (o.item === "file") assertEquals([typeof o.data, typeof o.end], ["string", "string"]);
    }
  },
});
