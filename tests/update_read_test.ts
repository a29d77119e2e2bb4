/**
 * What `update --checksum` reads of the receiver's copy (BeneathFolders.openFile): only the
 * regular file at the name, in its checked folder; a FIFO or a link put there after a look is
 * neither waited on nor followed. (Not a unit test: it makes FIFOs with mkfifo.)
 */
import { assertEquals } from "@std/assert";
import { join } from "node:path";
import { Inbox } from "../src/server/inbox.ts";
import { openFolders } from "../src/server/open_folders.ts";
import { loadNativeFs, type NativeFs } from "../src/server/native_fs.ts";
import { tempDir } from "./_harness.ts";

const native = loadNativeFs();

async function withDir(fn: (dir: string) => Promise<void> | void): Promise<void> {
  await using tmp = await tempDir();
  await fn(tmp.path);
}

function lib(): NativeFs {
  if (native === null) throw new Error("no native calls");
  return native;
}

Deno.test({
  name:
    "BeneathFolders.openFile() never opens what a name became after its check: a FIFO neither blocks nor a link leads out",
  ignore: native === null,
  async fn() {
    await withDir(async (dir) => {
      await using outsideDir = await tempDir();
      const secret = join(outsideDir.path, "secret");
      Deno.writeFileSync(secret, new TextEncoder().encode("outside"));
      const inbox = await Inbox.open(dir, lib());
      const folders = openFolders(inbox);
      const sub = await folders.ensure(["sub"]);
      const target = join(sub, "f");
      const aside = join(dir, "aside");
      const realOpen = Deno.open;
      /** openFile's result within 3 s, read whole; a blocked open is freed, then fails. */
      const openWithin = async (): Promise<string | null> => {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const file = await Promise.race([
          folders.openFile(sub, "f"),
          new Promise<"blocked">((resolve) => timer = setTimeout(() => resolve("blocked"), 3000)),
        ]).finally(() => clearTimeout(timer));
        if (file === "blocked") {
          (await realOpen(target, { write: true })).close(); // a writer frees the FIFO's open
          throw new Error("openFile blocked on a FIFO at the name");
        }
        if (file === null) return null;
        const buf = new Uint8Array(64);
        let text = "";
        try {
          for (let n = await file.read(buf); n !== null; n = await file.read(buf)) {
            text += new TextDecoder().decode(buf.subarray(0, n));
          }
        } finally {
          file.close();
        }
        return text;
      };
      /** The regular file at the name becomes what `swap` makes, right before Deno opens it. */
      const attempt = async (swap: () => void) => {
        Deno.writeFileSync(target, new TextEncoder().encode("inside"));
        let swapped = false;
        (Deno as { open: typeof Deno.open }).open = (path, options) => {
          if (!swapped) {
            swapped = true;
            Deno.renameSync(target, aside);
            swap();
          }
          return realOpen(path, options);
        };
        try {
          const text = await openWithin();
          if (swapped) {
            assertEquals(text, null, "what the name became is never read");
          } else {
            assertEquals(text, "inside", "the regular file at the name is read");
            Deno.renameSync(target, aside);
            swap();
            assertEquals(await openWithin(), null, "what is at the name now is not a file");
          }
        } finally {
          (Deno as { open: typeof Deno.open }).open = realOpen;
          for (const path of [target, aside]) {
            try {
              Deno.removeSync(path);
            } catch { /* not there */ }
          }
        }
      };
      await attempt(() => {
        new Deno.Command("mkfifo", { args: [target] }).outputSync();
      });
      await attempt(() => Deno.symlinkSync(secret, target));
      folders.close();
    });
  },
});
