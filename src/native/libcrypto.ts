/**
 * The system's OpenSSL 3 libcrypto, through Deno's FFI: where it is, and
 * the calls ferry makes into it (the AEAD in src/transport/aead_openssl.ts,
 * one-shot SHA-256 in src/transport/sha256_openssl.ts).
 *
 * It loads only a library at one of LIBCRYPTO_PATHS, and only when ffi
 * permission for that path was granted (never prompting); else null, and
 * ferry uses node:crypto.
 */

import { dlopenPermitted } from "./dlopen_permitted.ts";

/**
 * Where OpenSSL 3's libcrypto lives on common systems: Debian and Ubuntu
 * (x86-64, arm64), Fedora and RHEL, Arch and Alpine, Homebrew on macOS.
 * ferry's ffi permission is scoped to these files and the C library's
 * (src/cli/ffi_permission.ts).
 */
export const LIBCRYPTO_PATHS: readonly string[] = [
  "/usr/lib/x86_64-linux-gnu/libcrypto.so.3",
  "/usr/lib/aarch64-linux-gnu/libcrypto.so.3",
  "/usr/lib64/libcrypto.so.3",
  "/usr/lib/libcrypto.so.3",
  "/opt/homebrew/lib/libcrypto.3.dylib",
  "/usr/local/lib/libcrypto.3.dylib",
];

const SYMBOLS = {
  EVP_CIPHER_CTX_new: { parameters: [], result: "pointer" },
  EVP_chacha20_poly1305: { parameters: [], result: "pointer" },
  EVP_aes_256_gcm: { parameters: [], result: "pointer" },
  EVP_EncryptInit_ex: {
    parameters: ["pointer", "pointer", "pointer", "buffer", "buffer"],
    result: "i32",
  },
  EVP_EncryptUpdate: {
    parameters: ["pointer", "buffer", "buffer", "buffer", "i32"],
    result: "i32",
  },
  EVP_EncryptFinal_ex: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  EVP_DecryptInit_ex: {
    parameters: ["pointer", "pointer", "pointer", "buffer", "buffer"],
    result: "i32",
  },
  EVP_DecryptUpdate: {
    parameters: ["pointer", "buffer", "buffer", "buffer", "i32"],
    result: "i32",
  },
  EVP_DecryptFinal_ex: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  EVP_CIPHER_CTX_ctrl: { parameters: ["pointer", "i32", "i32", "buffer"], result: "i32" },
  EVP_sha256: { parameters: [], result: "pointer" },
  EVP_MD_fetch: { parameters: ["pointer", "buffer", "pointer"], result: "pointer" },
  EVP_sha512: { parameters: [], result: "pointer" },
  /** One-shot MAC (OpenSSL 3.0): libctx, name, propq, digest name, params, key, data, out, outlen. */
  EVP_Q_mac: {
    parameters: [
      "pointer",
      "buffer",
      "pointer",
      "buffer",
      "pointer",
      "buffer",
      "usize",
      "buffer",
      "usize",
      "buffer",
      "usize",
      "pointer",
    ],
    result: "pointer",
  },
  EVP_Digest: {
    parameters: ["buffer", "usize", "buffer", "buffer", "pointer", "pointer"],
    result: "i32",
  },
} as const;

export type Libcrypto = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** The library, loaded once; null when no permitted libcrypto loads. */
let loaded: Libcrypto | null | undefined;

/**
 * libcrypto, or null when no permitted one loads. Pass `paths` to look
 * elsewhere (tests; then nothing is cached).
 */
export function loadLibcrypto(paths?: readonly string[]): Libcrypto | null {
  if (paths !== undefined) return load(paths);
  if (loaded === undefined) loaded = load(LIBCRYPTO_PATHS);
  return loaded;
}

function load(paths: readonly string[]): Libcrypto | null {
  // Not there, not OpenSSL 3, or not allowed: node:crypto instead.
  return Deno.build.os === "windows" ? null : dlopenPermitted(paths, SYMBOLS);
}
