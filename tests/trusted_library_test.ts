/**
 * A native library is loaded only when no other local user can replace it:
 * owned by root or by us, and writable by nobody else, the file and its
 * folders alike.
 */
import { assert, assertFalse } from "@std/assert";
import { join } from "node:path";
import { trustedLibrary } from "../src/native/dlopen_permitted.ts";
import { tempDir } from "./_harness.ts";

const POSIX = Deno.build.os !== "windows";

Deno.test({
  name: "trustedLibrary() refuses a library that another user owns or anyone else may write",
  ignore: !POSIX,
  async fn() {
    await using tmp = await tempDir();
    const dir = tmp.path;
    await Deno.chmod(dir, 0o755);
    const lib = join(dir, "libcrypto.3.dylib");
    await Deno.writeFile(lib, new Uint8Array(16));
    await Deno.chmod(lib, 0o644);
    const me = Deno.uid()!;
    assert(trustedLibrary(lib, me), "ours, 0644, in a folder of ours");
    await Deno.chmod(lib, 0o664);
    assertFalse(trustedLibrary(lib, me), "group-writable");
    await Deno.chmod(lib, 0o644);
    await Deno.chmod(dir, 0o777);
    assertFalse(trustedLibrary(lib, me), "in a folder anyone may write");
    await Deno.chmod(dir, 0o755);
    const link = join(dir, "libcrypto.link");
    await Deno.symlink(lib, link);
    assert(trustedLibrary(link, me), "a link to a trusted file");
    if (me === 0) {
      await Deno.chown(lib, 4242, 4242);
      assertFalse(trustedLibrary(lib, 0), "another user's file");
      assert(trustedLibrary(lib, 4242), "the same file, for that user");
    } else {
      assertFalse(trustedLibrary(lib, null), "not root's, and our uid unknown");
    }
    assertFalse(trustedLibrary(join(dir, "missing.so")), "a missing file");
  },
});
