/**
 * The native libraries ferry may load, and the one `--allow-ffi` flag that
 * grants exactly those: OpenSSL 3's libcrypto for the AEAD and one-shot
 * SHA-256 (src/native/libcrypto.ts), libxxhash for XXH3-128
 * (src/native/libxxhash.ts) and, on Linux, the C library
 * (src/native/libc.ts) for the receiver's per-file calls
 * (src/server/native_fs.ts), the sender's small reads and walk, and the
 * receiver's listings (src/native/native_read.ts), and libsodium for
 * CPace's ristretto255 (src/native/libsodium.ts). Each is used only
 * where it loads; without it ferry uses Deno's own, slower, equivalents.
 * The serve, send and test tasks in deno.json and the compiled binaries
 * (scripts/compile.ts) carry this flag.
 *
 * A path-scoped ffi permission still lets any code in the process bind any
 * function of those libraries (the C library's `system`, say). So `serve`
 * and `send` load what they use first, then give the permission up
 * (`loadNativeThenRevoke`): from then on nothing in the process can load
 * native code, and the only native functions it can call are the file,
 * cipher, digest and group calls bound here.
 */
import { LIBCRYPTO_PATHS, loadLibcrypto } from "../native/libcrypto.ts";
import { LIBXXHASH_PATHS } from "../native/libxxhash.ts";
import { nativeDigests } from "../transport/native_digests.ts";
import { LIBC_PATHS } from "../native/libc.ts";
import { LIBSODIUM_PATHS, loadLibsodium } from "../native/libsodium.ts";
import { loadShortHashes } from "../transport/short_hashes.ts";

export const FFI_PATHS: readonly string[] = [
  ...LIBCRYPTO_PATHS,
  ...LIBXXHASH_PATHS,
  ...LIBC_PATHS,
  ...LIBSODIUM_PATHS,
];

export const ALLOW_FFI_FLAG = `--allow-ffi=${FFI_PATHS.join(",")}`;

/**
 * Loads the native libraries `command` uses (libcrypto, libxxhash, the C
 * library and libsodium), then revokes ffi permission for the rest of the process. The
 * receiver's file calls and the sender's reads are imported only by the
 * command that uses them.
 */
export async function loadNativeThenRevoke(command: "serve" | "send"): Promise<void> {
  loadLibcrypto();
  // The handshake's hashes: OpenSSL's (no npm package to load), or @noble/hashes' without it.
  await loadShortHashes();
  nativeDigests();
  loadLibsodium();
  // The receiver lists with the sender's reads too (a sync's LIST, src/server/listing_walk.ts).
  if (command === "serve") (await import("../server/native_fs.ts")).loadNativeFs();
  (await import("../native/native_read.ts")).loadNativeReader();
  Deno.permissions.revokeSync({ name: "ffi" });
}
