/**
 * Small files staged unnamed in their own folder (O_TMPFILE, src/server/small_file.ts and
 * beneath.ts): nothing under any name until placed, placed by a link that never replaces,
 * dropped without a trace, refused where the folder was swapped; and the staging folder where
 * unnamed files cannot be made or named, and for the policies that replace.
 */
import { assert, assertEquals, assertInstanceOf, assertMatch } from "@std/assert";
import { join } from "node:path";
import { loadDigest } from "../src/protocol/digests.ts";
import type { ConflictPolicy } from "../src/server/inbox.ts";
import { Inbox, Refusal } from "../src/server/inbox.ts";
import { CHECK_STANDS_MS, FOLDER_FDS } from "../src/server/beneath.ts";
import type { Folders } from "../src/server/folders.ts";
import { openFolders } from "../src/server/open_folders.ts";
import { loadNativeFs, type NativeFs } from "../src/server/native_fs.ts";
import { LIBC_PATHS } from "../src/native/libc.ts";
import { SmallFile, StagedFile, UnnamedFile } from "../src/server/small_file.ts";
import { tempDir } from "./_harness.ts";
import { fsyncsInPlace } from "./_fsyncs_in_place.ts";

const native = loadNativeFs();
const xxh128 = await loadDigest("xxh128");
const MTIME = 1_600_000_000_123;

/** Verifies and stages `text` as a small file for folder `dir` under `policy`. */
function stageText(folders: Folders, dir: string, text: string, policy: ConflictPolicy) {
  const data = new TextEncoder().encode(text);
  const small = new SmallFile();
  small.begin({ id: 0, path: "f", kind: "file", size: data.length, mtime: MTIME, mode: 0o640 });
  small.add(data);
  return small.stage(
    { id: 0, length: data.length, digest: xxh128.of(data) },
    folders,
    xxh128,
    dir,
    policy,
  );
}

function names(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
}

/** Runs `fn` on a fresh DIR's inbox through `calls`, its fsyncs in place; closes its folders. */
async function withFolders(
  calls: NativeFs | null,
  fn: (at: { root: string; inbox: Inbox; folders: Folders }) => Promise<void>,
): Promise<void> {
  await using tmp = await tempDir();
  const inbox = fsyncsInPlace(await Inbox.open(tmp.path, calls));
  const folders = openFolders(inbox);
  try {
    await fn({ root: tmp.path, inbox, folders });
  } finally {
    folders.close();
  }
}

/** Waits until a folder's last check no longer stands, so that placing checks it again. */
function pastCheck(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, CHECK_STANDS_MS + 5));
}

Deno.test({
  name: "SmallFile.stage() writes a small file unnamed in its folder: no name until placed, " +
    "named by a link that never replaces, gone when dropped",
  ignore: native === null,
  async fn() {
    await withFolders(native, async ({ root, inbox, folders }) => {
      const sub = await folders.ensure(["sub"]);
      const staging = join(root, ".ferry", "tmp");
      const dropped = stageText(folders, sub, "dropped", "rename");
      assert(inbox.unnamedFiles, "this machine's tmp folder has unnamed files that can be named");
      assertInstanceOf(dropped, UnnamedFile);
      assertEquals(names(sub), [], "no name while staged");
      assertEquals(names(staging), [], "nothing in the staging folder, the probe's name gone");
      dropped.drop();
      assertEquals(names(sub), [], "dropped: nothing left");

      const first = stageText(folders, sub, "first", "rename");
      const placed = first.place(folders, sub, "f.txt", "rename");
      assertEquals(placed, "f.txt", "named at once, its folder being open");
      const info = Deno.statSync(join(sub, "f.txt"));
      assertEquals(Deno.readTextFileSync(join(sub, "f.txt")), "first");
      assertEquals(info.mtime?.getTime(), MTIME);
      assertEquals(info.mode! & 0o777, 0o640);

      // A taken name: another under "rename", nothing under "skip", a refusal under "fail".
      assertEquals(
        stageText(folders, sub, "second", "rename").place(folders, sub, "f.txt", "rename"),
        "f (1).txt",
      );
      assertEquals(
        stageText(folders, sub, "third", "skip").place(folders, sub, "f.txt", "skip"),
        null,
      );
      let refused: unknown = null;
      try {
        stageText(folders, sub, "fourth", "fail").place(folders, sub, "f.txt", "fail");
      } catch (err) {
        refused = err;
      }
      assertInstanceOf(refused, Refusal);
      assertMatch((refused as Error).message, /already exists/);
      assertEquals(names(sub), ["f (1).txt", "f.txt"]);
      assertEquals(Deno.readTextFileSync(join(sub, "f.txt")), "first", "never replaced");
      assertEquals(Deno.readTextFileSync(join(sub, "f (1).txt")), "second");
      // A folder at the name: never replaced (under "skip", skipped).
      Deno.mkdirSync(join(sub, "d"));
      assertEquals(stageText(folders, sub, "x", "skip").place(folders, sub, "d", "skip"), null);
      assert(Deno.statSync(join(sub, "d")).isDirectory);
      assertEquals(names(staging), []);
    });
  },
});

Deno.test({
  name: "SmallFile.stage() stages through the staging folder for a policy that replaces, " +
    "and where the folder is not open",
  ignore: native === null,
  async fn() {
    await withFolders(native, async ({ root, folders }) => {
      const sub = await folders.ensure(["sub"]);
      Deno.writeTextFileSync(join(sub, "f"), "old");
      for (const policy of ["overwrite", "update"] as const) {
        const staged = stageText(folders, sub, policy, policy);
        assertInstanceOf(staged, StagedFile);
        assertEquals(await staged.place(folders, sub, "f", policy), "f");
        assertEquals(Deno.readTextFileSync(join(sub, "f")), policy, "replaced");
      }
      // A folder this session has not opened: staged by name, placed once it is walked to.
      const other = Deno.makeTempDirSync({ dir: root });
      const staged = stageText(folders, other, "other", "rename");
      assertInstanceOf(staged, StagedFile);
      assertEquals(await staged.place(folders, other, "g", "rename"), "g");
      assertEquals(Deno.readTextFileSync(join(other, "g")), "other");
      assertEquals(names(join(root, ".ferry", "tmp")), []);
    });
  },
});

Deno.test({
  name: "An unnamed small file whose folder was swapped for a link or moved is refused, " +
    "and nothing lands anywhere",
  ignore: native === null,
  async fn() {
    await using elsewhereDir = await tempDir();
    const elsewhere = elsewhereDir.path;
    await withFolders(native, async ({ folders }) => {
      const linked = await folders.ensure(["linked"]);
      const moved = await folders.ensure(["moved"]);
      const toLink = stageText(folders, linked, "secret", "rename");
      const toMove = stageText(folders, moved, "secret", "rename");
      assertInstanceOf(toLink, UnnamedFile);
      assertInstanceOf(toMove, UnnamedFile);
      Deno.mkdirSync(join(elsewhere, "target"));
      Deno.renameSync(linked, join(elsewhere, "linked-was"));
      Deno.symlinkSync(join(elsewhere, "target"), linked);
      Deno.renameSync(moved, join(elsewhere, "moved"));
      await pastCheck();
      for (
        const [file, dir, reason] of [[toLink, linked, /replaced or moved|symbolic link/], [
          toMove,
          moved,
          /moved or removed/,
        ]] as const
      ) {
        let err: unknown = null;
        try {
          const placed = file.place(folders, dir, "f", "rename");
          if (placed instanceof Promise) await placed;
        } catch (e) {
          err = e;
        }
        assertInstanceOf(err, Refusal);
        assertMatch((err as Error).message, reason);
      }
      assertEquals(names(join(elsewhere, "target")), [], "nothing went through the link");
      assertEquals(names(join(elsewhere, "linked-was")), [], "nor into the folder moved away");
      assertEquals(names(join(elsewhere, "moved")), []);
    });
  },
});

/**
 * Fresh C-library calls whose unnamed files cannot be made (`create`), cannot be named (`link`),
 * or cannot be made the first time only, for want of a descriptor (`once`).
 */
function withoutUnnamed(
  fails: "create" | "link" | "once",
): { calls: NativeFs; made: () => number } {
  const calls = loadNativeFs(LIBC_PATHS)!;
  let made = 0;
  const create = calls.createUnnamed.bind(calls);
  calls.createUnnamed = (mode, dir) => {
    if (fails === "once" && made === 0) {
      made++;
      throw Object.assign(new Error("Too many open files (os error 24): open"), {
        code: "EMFILE",
      });
    }
    made++;
    return fails === "create" ? null : create(mode, dir);
  };
  if (fails === "link") {
    // What Linux before 6.10 says to a caller without CAP_DAC_READ_SEARCH.
    calls.linkUnnamed = (_fd, to) => {
      throw Object.assign(new Error(`No such file or directory (os error 2): link '${to}'`), {
        code: "ENOENT",
      });
    };
  }
  return { calls, made: () => made };
}

Deno.test({
  name:
    "A passing failure of the probe (no descriptor left) decides nothing: the next file asks again",
  ignore: native === null,
  async fn() {
    const { calls } = withoutUnnamed("once");
    await withFolders(calls, async ({ inbox, folders }) => {
      const sub = await folders.ensure(["sub"]);
      const first = stageText(folders, sub, "first", "rename");
      assertInstanceOf(first, StagedFile);
      assertEquals(inbox.unnamedFiles, undefined, "not decided");
      assertEquals(await first.place(folders, sub, "a", "rename"), "a");
      const second = stageText(folders, sub, "second", "rename");
      assertInstanceOf(second, UnnamedFile);
      assertEquals(inbox.unnamedFiles, true);
      assertEquals(second.place(folders, sub, "b", "rename"), "b");
      assertEquals(names(sub), ["a", "b"]);
    });
  },
});

Deno.test({
  name:
    "An unnamed small file whose folder was closed before placing is named once it is walked to",
  ignore: native === null,
  async fn() {
    await withFolders(native, async ({ folders }) => {
      const first = await folders.ensure(["first"]);
      const file = stageText(folders, first, "kept", "rename");
      assertInstanceOf(file, UnnamedFile);
      // Enough other folders to close the first one's descriptor (FOLDER_FDS, beneath.ts).
      for (let i = 0; i <= FOLDER_FDS + 1; i++) await folders.ensure([`other${i}`]);
      const placed = file.place(folders, first, "f", "rename");
      assertInstanceOf(placed, Promise, "walked to again: a promise");
      assertEquals(await placed, "f");
      assertEquals(Deno.readTextFileSync(join(first, "f")), "kept");
    });
  },
});

Deno.test({
  name: "Small files go through the staging folder where unnamed files cannot be made or named",
  ignore: native === null,
  async fn() {
    for (const fails of ["create", "link"] as const) {
      const { calls, made } = withoutUnnamed(fails);
      await withFolders(calls, async ({ root, inbox, folders }) => {
        const sub = await folders.ensure(["sub"]);
        for (let i = 0; i < 3; i++) {
          const staged = stageText(folders, sub, `${i}`, "rename");
          assertInstanceOf(staged, StagedFile, fails);
          assertEquals(await staged.place(folders, sub, `f${i}`, "rename"), `f${i}`);
        }
        assertEquals(inbox.unnamedFiles, false, fails);
        assertEquals(made(), 1, `${fails}: found out once, by the probe`);
        assertEquals(names(sub), ["f0", "f1", "f2"]);
        assertEquals(names(join(root, ".ferry", "tmp")), [], `${fails}: nothing left staged`);
      });
    }
  },
});
