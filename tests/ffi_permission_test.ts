/**
 * The ffi permission (src/cli/ffi_permission.ts): `serve` and `send` load
 * their native libraries, then give the permission up, so nothing else in
 * the process can bind a native function (the C library's `system`, say).
 */
import { assertEquals } from "@std/assert";
import { join } from "node:path";
import { ALLOW_FFI_FLAG } from "../src/cli/ffi_permission.ts";
import { LIBC_PATHS } from "../src/native/libc.ts";
import { LIBXXHASH_PATHS } from "../src/native/libxxhash.ts";
import { LIBSODIUM_PATHS } from "../src/native/libsodium.ts";
import { tempDir } from "./_harness.ts";
import { presentFiles } from "./_libraries.ts";

const libc = presentFiles(LIBC_PATHS)[0];
const hasLibxxhash = presentFiles(LIBXXHASH_PATHS).length > 0;
const hasLibsodium = presentFiles(LIBSODIUM_PATHS).length > 0;

/** XXH3-128("abc"), as `xxh128sum` prints it. */
const ABC_XXH128 = "06b05ab6733a618578af5f94892f3950";

Deno.test({
  name: "loadNativeThenRevoke() keeps what it loaded and leaves no way to load more",
  ignore: Deno.build.os !== "linux" || libc === undefined,
  async fn() {
    await using tmp = await tempDir();
    const dir = tmp.path;
    const probe = join(dir, "probe.ts");
    const src = (path: string) => JSON.stringify(new URL(`../src/${path}`, import.meta.url).href);
    await Deno.writeTextFile(
      probe,
      `import { loadNativeThenRevoke } from ${src("cli/ffi_permission.ts")};
import { loadNativeFs } from ${src("server/native_fs.ts")};
import { loadLibcrypto } from ${src("native/libcrypto.ts")};
import { nativeXxh128 } from ${src("transport/xxh128_native.ts")};
import { loadNativeReader } from ${src("native/native_read.ts")};
import { loadRistretto255 } from ${src("transport/ristretto255_load.ts")};
import { shortHashes } from ${src("transport/short_hashes.ts")};
const libc = ${JSON.stringify(libc)};
const before = Deno.permissions.querySync({ name: "ffi", path: libc }).state;
await loadNativeThenRevoke(Deno.args[0]);
const after = Deno.permissions.querySync({ name: "ffi", path: libc }).state;
let bound = "yes";
try {
  Deno.dlopen(libc, { getpid: { parameters: [], result: "i32" } });
} catch (err) {
  bound = err.name;
}
const fs = loadNativeFs();
const file = ${JSON.stringify(join(dir, "made"))};
if (fs !== null) fs.close(fs.createExclusive(file, 0o600));
console.log(JSON.stringify({ before, after, bound, fs: fs !== null, made: fs !== null && Deno.statSync(file).isFile, reader: loadNativeReader() !== null, crypto: loadLibcrypto() !== null, xxh128: xxh128(nativeXxh128()), group: (await loadRistretto255()).name, hashes: shortHashes().name }));
function xxh128(digest) {
  if (digest === null) return null;
  const hasher = digest.hasher();
  hasher.update(new TextEncoder().encode("abc"));
  return Array.from(hasher.digest(), (b) => b.toString(16).padStart(2, "0")).join("");
}
`,
    );
    const run = async (command: string) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--quiet",
          "--config",
          new URL("../deno.json", import.meta.url).pathname,
          ALLOW_FFI_FLAG,
          "--allow-read",
          "--allow-write",
          probe,
          command,
        ],
        stdout: "piped",
        stderr: "inherit",
      }).output();
      assertEquals(out.code, 0);
      return JSON.parse(new TextDecoder().decode(out.stdout));
    };
    const serve = await run("serve");
    assertEquals(serve.before, "granted");
    assertEquals(serve.after, "prompt");
    assertEquals(serve.bound, "NotCapable");
    assertEquals([serve.fs, serve.made], [true, true], "the file calls loaded first still work");
    const send = await run("send");
    assertEquals([send.after, send.bound, send.fs], ["prompt", "NotCapable", false]);
    // serve lists what it holds for a sync with the sender's reads (PROTOCOL.md §5.16).
    assertEquals([serve.reader, send.reader], [true, true], "each loads what it uses");
    assertEquals(send.crypto, serve.crypto);
    // CPace's group and the handshake's hashes come from what was loaded before the revoke.
    assertEquals(
      [serve.hashes, send.hashes],
      serve.crypto ? ["openssl", "openssl"] : [
        "@noble/hashes",
        "@noble/hashes",
      ],
    );
    if (hasLibsodium) assertEquals([serve.group, send.group], ["libsodium", "libsodium"]);
    if (hasLibxxhash) {
      // Loaded before the revoke, XXH3-128 still hashes (a new native state per file) after it.
      assertEquals([serve.xxh128, send.xxh128], [ABC_XXH128, ABC_XXH128]);
    }
  },
});
