/**
 * The AEAD suites from the system's OpenSSL 3 libcrypto, called through
 * Deno's FFI (EVP interface). It writes ciphertext into the caller's buffer
 * and decrypts in place, so records cost no allocation, and it is faster
 * than node:crypto for both suites (docs/PERFORMANCE.md).
 *
 * The library comes from src/native/libcrypto.ts (only where ffi permission for it was
 * granted). Without it, ferry uses node:crypto; the wire format is the same
 * either way.
 */
import type { Aead, Suite } from "./aead_suite.ts";
import { type Libcrypto as Lib, loadLibcrypto } from "../native/libcrypto.ts";

/** EVP_CTRL_AEAD_GET_TAG and EVP_CTRL_AEAD_SET_TAG (openssl/evp.h). */
const CTRL_AEAD_GET_TAG = 0x10;
const CTRL_AEAD_SET_TAG = 0x11;
const TAG_BYTES = 16;

/**
 * The OpenSSL engine for `suite`, or null when no permitted libcrypto loads.
 * Pass `paths` to look elsewhere (tests; then nothing is cached).
 */
export function loadOpensslAead(suite: Suite, paths?: readonly string[]): Aead | null {
  const lib = loadLibcrypto(paths);
  if (lib === null) return null;
  try {
    const ctx = lib.EVP_CIPHER_CTX_new();
    const cipher = suite === "aes-256-gcm" ? lib.EVP_aes_256_gcm() : lib.EVP_chacha20_poly1305();
    if (ctx === null || cipher === null) return null;
    return new OpensslAead(suite, lib, ctx, cipher);
  } catch {
    return null;
  }
}

/**
 * One EVP context per suite for the whole process, set up again with key and
 * nonce for every record: calls are synchronous, so they never interleave.
 * Both ciphers take a 12-byte nonce by default.
 */
class OpensslAead implements Aead {
  readonly engine = "openssl";
  readonly #outLength = new Int32Array(1);
  readonly #final = new Uint8Array(TAG_BYTES);

  constructor(
    readonly suite: Suite,
    private readonly lib: Lib,
    private readonly ctx: Deno.PointerObject,
    private readonly cipher: Deno.PointerObject,
  ) {}

  seal(
    key: Uint8Array,
    nonce: Uint8Array,
    aad: Uint8Array,
    plaintext: readonly Uint8Array[],
    out: Uint8Array,
  ): void {
    checkSizes(key, nonce);
    const { lib, ctx } = this;
    let length = 0;
    for (const part of plaintext) length += part.length;
    if (out.length !== length + TAG_BYTES) {
      throw new RangeError("seal: out is plaintext + 16 bytes");
    }
    check(lib.EVP_EncryptInit_ex(ctx, this.cipher, null, key, nonce), "EVP_EncryptInit_ex");
    if (aad.length > 0) {
      check(
        lib.EVP_EncryptUpdate(ctx, null, this.#outLength, aad, aad.length),
        "EVP_EncryptUpdate",
      );
    }
    let at = 0;
    for (const part of plaintext) {
      if (part.length === 0) continue;
      const into = out.subarray(at, at + part.length);
      check(
        lib.EVP_EncryptUpdate(ctx, into, this.#outLength, part, part.length),
        "EVP_EncryptUpdate",
      );
      at += part.length;
    }
    check(lib.EVP_EncryptFinal_ex(ctx, this.#final, this.#outLength), "EVP_EncryptFinal_ex");
    const tag = out.subarray(at);
    check(lib.EVP_CIPHER_CTX_ctrl(ctx, CTRL_AEAD_GET_TAG, TAG_BYTES, tag), "EVP_CIPHER_CTX_ctrl");
  }

  open(
    key: Uint8Array,
    nonce: Uint8Array,
    aad: Uint8Array,
    ciphertext: Uint8Array,
    tag: Uint8Array,
  ): Uint8Array | null {
    // In place: OpenSSL allows input and output at exactly the same address.
    return this.openInto(key, nonce, aad, ciphertext, tag, [ciphertext]) ? ciphertext : null;
  }

  openInto(
    key: Uint8Array,
    nonce: Uint8Array,
    aad: Uint8Array,
    ciphertext: Uint8Array,
    tag: Uint8Array,
    out: readonly Uint8Array[],
  ): boolean {
    const { lib, ctx } = this;
    checkSizes(key, nonce);
    let length = 0;
    for (const part of out) length += part.length;
    if (length !== ciphertext.length) {
      throw new RangeError("openInto: out is the ciphertext's size");
    }
    if (tag.length !== TAG_BYTES) return false;
    check(lib.EVP_DecryptInit_ex(ctx, this.cipher, null, key, nonce), "EVP_DecryptInit_ex");
    if (aad.length > 0) {
      check(
        lib.EVP_DecryptUpdate(ctx, null, this.#outLength, aad, aad.length),
        "EVP_DecryptUpdate",
      );
    }
    let at = 0;
    for (const part of out) {
      if (part.length === 0) continue;
      const from = ciphertext.subarray(at, at + part.length);
      check(
        lib.EVP_DecryptUpdate(ctx, part, this.#outLength, from, part.length),
        "EVP_DecryptUpdate",
      );
      at += part.length;
    }
    check(lib.EVP_CIPHER_CTX_ctrl(ctx, CTRL_AEAD_SET_TAG, TAG_BYTES, tag), "EVP_CIPHER_CTX_ctrl");
    // Final verifies the tag: a failure means the record was not authentic. OpenSSL has
    // already written the plaintext by then; wipe it, so no unverified byte is left behind.
    if (lib.EVP_DecryptFinal_ex(ctx, this.#final, this.#outLength) === 1) return true;
    for (const part of out) part.fill(0);
    return false;
  }
}

/** The FFI reads exactly 32 key and 12 nonce bytes: refuse other sizes, as node:crypto does. */
function checkSizes(key: Uint8Array, nonce: Uint8Array): void {
  if (key.length !== 32 || nonce.length !== 12) {
    throw new RangeError("an AEAD key is 32 bytes and its nonce 12");
  }
}

function check(result: number, call: string): void {
  if (result !== 1) throw new Error(`OpenSSL ${call} failed`);
}
