/**
 * The native libraries ferry may load, and the one `--allow-ffi` flag that
 * grants exactly those: OpenSSL 3's libcrypto for the AEAD
 * (src/transport/aead_openssl.ts) and, on Linux, the C library for the
 * receiver's per-file calls (src/server/native_fs.ts). Each is used only
 * where it loads; without it ferry uses Deno's own, slower, equivalents.
 * The serve, send and test tasks in deno.json and the compiled binaries
 * (scripts/compile.ts) carry this flag.
 */
import { LIBCRYPTO_PATHS } from "../transport/aead_openssl.ts";
import { LIBC_PATHS } from "../server/native_fs.ts";

export const FFI_PATHS: readonly string[] = [...LIBCRYPTO_PATHS, ...LIBC_PATHS];

export const ALLOW_FFI_FLAG = `--allow-ffi=${FFI_PATHS.join(",")}`;
