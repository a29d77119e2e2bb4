/**
 * The system's libsodium (1.0.18 or later), through Deno's FFI: where it
 * is, and the ristretto255 calls ferry makes into it
 * (src/transport/ristretto255_sodium.ts).
 *
 * It loads only a library at one of LIBSODIUM_PATHS, only when ffi
 * permission for that path was granted (never prompting), and only if
 * `sodium_init()` succeeds; else null, and CPace uses @noble/curves'
 * ristretto255 (src/transport/ristretto255_noble.ts).
 */

import { dlopenPermitted } from "./dlopen_permitted.ts";

/**
 * Where libsodium lives on common systems: Debian and Ubuntu (x86-64, arm64;
 * 1.0.18 is `.so.23`, 1.0.19 and later `.so.26`), Fedora and RHEL, Arch and
 * Alpine, Homebrew on macOS. ferry's ffi permission is scoped to these
 * files and the other libraries' (src/cli/ffi_permission.ts).
 */
export const LIBSODIUM_PATHS: readonly string[] = [
  "/usr/lib/x86_64-linux-gnu/libsodium.so.23",
  "/usr/lib/x86_64-linux-gnu/libsodium.so.26",
  "/usr/lib/aarch64-linux-gnu/libsodium.so.23",
  "/usr/lib/aarch64-linux-gnu/libsodium.so.26",
  "/usr/lib64/libsodium.so.23",
  "/usr/lib64/libsodium.so.26",
  "/usr/lib/libsodium.so.23",
  "/usr/lib/libsodium.so.26",
  "/opt/homebrew/lib/libsodium.26.dylib",
  "/opt/homebrew/lib/libsodium.23.dylib",
  "/usr/local/lib/libsodium.26.dylib",
  "/usr/local/lib/libsodium.23.dylib",
];

const SYMBOLS = {
  sodium_init: { parameters: [], result: "i32" },
  /** 64 uniform bytes in, 32 out (RFC 9496 §4.3.4). */
  crypto_core_ristretto255_from_hash: { parameters: ["buffer", "buffer"], result: "i32" },
  /** 32 bytes in; 1 where they decode to an element. */
  crypto_core_ristretto255_is_valid_point: { parameters: ["buffer"], result: "i32" },
  /** Out (32), scalar (32), element (32); -1 where the element does not decode or the product is the identity. */
  crypto_scalarmult_ristretto255: { parameters: ["buffer", "buffer", "buffer"], result: "i32" },
} as const;

export type Libsodium = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let loaded: Libsodium | null | undefined;

/**
 * libsodium, or null where it is not there, not permitted, not trusted
 * (dlopen_permitted.ts) or fails to initialize. Pass `paths` to look
 * elsewhere (tests; nothing is cached).
 */
export function loadLibsodium(paths?: readonly string[]): Libsodium | null {
  if (paths !== undefined) return load(paths);
  if (loaded === undefined) loaded = load(LIBSODIUM_PATHS);
  return loaded;
}

function load(paths: readonly string[]): Libsodium | null {
  if (Deno.build.os === "windows") return null;
  const lib = dlopenPermitted(paths, SYMBOLS);
  // 0: initialized now, 1: already; -1: it could not (no randomness source, say).
  return lib !== null && lib.sodium_init() >= 0 ? lib : null;
}
