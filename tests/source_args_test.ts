/**
 * What a path on `ferry send`'s command line names, under the permission
 * set ferry ships with (README, "What the sender does").
 */
import { assertEquals } from "@std/assert";
import { resolveSources, walk } from "../src/client/walk.ts";
import { tempDir } from "./_temp_dir.ts";

/** The paths (on the receiver) of what `ferry send ARG` would send, sorted. */
async function sent(arg: string): Promise<string[]> {
  const paths: string[] = [];
  for await (const item of walk(await resolveSources([arg], "stdin"))) {
    if (item.type === "entry") paths.push(item.entry.path);
  }
  return paths.sort();
}

Deno.test({
  name:
    "resolveSources(): a `..` is taken by name, as cd does: `link/..` is the folder the link is in",
  ignore: Deno.build.os === "windows",
  async fn() {
    await using dir = await tempDir();
    await Deno.mkdir(dir.join("real", "inner"), { recursive: true });
    await Deno.writeTextFile(dir.join("real", "top.txt"), "top");
    await Deno.mkdir(dir.join("work"));
    await Deno.writeTextFile(dir.join("work", "w.txt"), "w");
    await Deno.symlink(dir.join("real", "inner"), dir.join("work", "link"));
    // Written out: join() would take the ".." off before ferry sees it.
    const sources = await resolveSources([`${dir.path}/work/link/..`], "stdin");
    assertEquals(sources.map((s) => [s.name, s.info?.isDirectory]), [["work", true]]);
    // What is checked is what is walked: the folder the link is in, its link skipped.
    assertEquals(await sent(`${dir.path}/work/link/..`), ["work", "work/w.txt"]);
    assertEquals(await sent(`${dir.path}/work/link/../w.txt`), ["w.txt"]);
  },
});
