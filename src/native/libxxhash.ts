/**
 * The system's xxHash library (libxxhash 0.8, which rsync itself links),
 * through Deno's FFI: where it is, and the XXH3-128 calls ferry makes into
 * it (src/transport/xxh128_native.ts).
 *
 * It loads only a library at one of LIBXXHASH_PATHS, and only when ffi
 * permission for that path was granted (never prompting); else null, and
 * ferry uses the WebAssembly build (src/protocol/digests.ts).
 */

import { dlopenPermitted } from "./dlopen_permitted.ts";

/**
 * Where libxxhash 0.8 lives on common systems: Debian and Ubuntu (x86-64,
 * arm64), Fedora and RHEL, Arch and Alpine, Homebrew on macOS. ferry's ffi
 * permission is scoped to these files, libcrypto's and the C library's
 * (src/cli/ffi_permission.ts).
 */
export const LIBXXHASH_PATHS: readonly string[] = [
  "/usr/lib/x86_64-linux-gnu/libxxhash.so.0",
  "/usr/lib/aarch64-linux-gnu/libxxhash.so.0",
  "/usr/lib64/libxxhash.so.0",
  "/usr/lib/libxxhash.so.0",
  "/opt/homebrew/lib/libxxhash.0.dylib",
  "/usr/local/lib/libxxhash.0.dylib",
];

/** XXH128_hash_t: `{ uint64_t low64; uint64_t high64; }`, returned by value. */
const XXH128_HASH = { struct: ["u64", "u64"] } as const;

const SYMBOLS = {
  XXH_versionNumber: { parameters: [], result: "u32" },
  XXH3_128bits: { parameters: ["buffer", "usize"], result: XXH128_HASH },
  XXH3_createState: { parameters: [], result: "pointer" },
  XXH3_freeState: { parameters: ["pointer"], result: "i32" },
  XXH3_128bits_reset: { parameters: ["pointer"], result: "i32" },
  XXH3_128bits_update: { parameters: ["pointer", "buffer", "usize"], result: "i32" },
  XXH3_128bits_digest: { parameters: ["pointer"], result: XXH128_HASH },
  /**
   * The same two calls through xxHash's x86 dispatcher (xxh_x86dispatch.c), which picks AVX2 or
   * AVX-512 code where the CPU has it, where the plain calls stop at SSE2: in libraries built
   * with it (Debian's and Ubuntu's are), else null. Several times faster on large data
   * (docs/PERFORMANCE.md).
   */
  XXH3_128bits_dispatch: { parameters: ["buffer", "usize"], result: XXH128_HASH, optional: true },
  XXH3_128bits_update_dispatch: {
    parameters: ["pointer", "buffer", "usize"],
    result: "i32",
    optional: true,
  },
} as const;

export type Libxxhash = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** The library, loaded once; null when no permitted libxxhash loads. */
let loaded: Libxxhash | null | undefined;

/**
 * libxxhash, or null when no permitted one loads. Pass `paths` to look
 * elsewhere (tests; then nothing is cached).
 */
export function loadLibxxhash(paths?: readonly string[]): Libxxhash | null {
  if (paths !== undefined) return load(paths);
  if (loaded === undefined) loaded = load(LIBXXHASH_PATHS);
  return loaded;
}

function load(paths: readonly string[]): Libxxhash | null {
  return Deno.build.os === "windows" ? null : dlopenPermitted(paths, SYMBOLS);
}
