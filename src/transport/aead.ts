/**
 * AEAD_CHACHA20_POLY1305 (RFC 8439 §2.8) behind one small interface, with two
 * engines that produce the same bytes:
 *
 * - OpenSSL's libcrypto through Deno's FFI (aead_openssl.ts), when the system
 *   has OpenSSL 3 at a known path and ferry was given ffi permission for it.
 *   It encrypts straight into the caller's buffer and decrypts in place: no
 *   allocation per record, and about 1.7× node:crypto's speed here.
 * - node:crypto (aead_node.ts), always available: the fallback.
 *
 * An engine is used only after it passes the RFC 8439 §2.8.2 test vector.
 */
import { nodeChaChaPoly } from "./aead_node.ts";
import { loadOpensslChaChaPoly } from "./aead_openssl.ts";

export interface ChaChaPoly {
  /** Which implementation this is: "openssl" or "node:crypto". */
  readonly engine: string;
  /**
   * Encrypts the concatenation of `plaintext` into `out`, followed by the
   * 16-byte tag over `aad` and the ciphertext. `out` is exactly the
   * plaintext's total length + 16 and must not overlap the plaintext.
   */
  seal(
    key: Uint8Array,
    nonce: Uint8Array,
    aad: Uint8Array,
    plaintext: readonly Uint8Array[],
    out: Uint8Array,
  ): void;
  /**
   * Verifies `tag` over `aad` and `ciphertext` and returns the plaintext, or
   * null when authentication fails. The plaintext may be `ciphertext` itself,
   * decrypted in place; either way nothing unverified is returned, and the
   * caller must treat `ciphertext` as consumed.
   */
  open(
    key: Uint8Array,
    nonce: Uint8Array,
    aad: Uint8Array,
    ciphertext: Uint8Array,
    tag: Uint8Array,
  ): Uint8Array | null;
}

/** RFC 8439 §2.8.2: the AEAD test vector every engine must reproduce before use. */
const VECTOR = {
  key: "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
  nonce: "070000004041424344454647",
  aad: "50515253c0c1c2c3c4c5c6c7",
  plaintext: "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for " +
    "the future, sunscreen would be it.",
  ciphertext: "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6" +
    "3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36" +
    "92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc" +
    "3ff4def08e4b7a9de576d26586cec64b6116",
  tag: "1ae10b594f09e26a7e902ecbd0600691",
};

function fromHex(s: string): Uint8Array {
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Whether `aead` reproduces the RFC 8439 §2.8.2 vector (split across two
 * plaintext pieces, as records are), opens it, and refuses it with one bit
 * flipped.
 */
export function passesKnownAnswer(aead: ChaChaPoly): boolean {
  try {
    const key = fromHex(VECTOR.key);
    const nonce = fromHex(VECTOR.nonce);
    const aad = fromHex(VECTOR.aad);
    const plaintext = new TextEncoder().encode(VECTOR.plaintext);
    const expected = fromHex(VECTOR.ciphertext + VECTOR.tag);
    const out = new Uint8Array(expected.length);
    aead.seal(key, nonce, aad, [plaintext.subarray(0, 1), plaintext.subarray(1)], out);
    if (!sameBytes(out, expected)) return false;
    const ctEnd = plaintext.length;
    const tampered = out.slice();
    tampered[7] ^= 1;
    if (aead.open(key, nonce, aad, tampered.subarray(0, ctEnd), tampered.subarray(ctEnd))) {
      return false;
    }
    const back = aead.open(key, nonce, aad, out.subarray(0, ctEnd), out.subarray(ctEnd));
    return back !== null && sameBytes(back, plaintext);
  } catch {
    return false;
  }
}

let chosen: ChaChaPoly | null = null;

/** The fastest engine that works here: OpenSSL when available and permitted, else node:crypto. */
export function defaultChaChaPoly(): ChaChaPoly {
  if (chosen === null) {
    const openssl = loadOpensslChaChaPoly();
    chosen = openssl !== null && passesKnownAnswer(openssl) ? openssl : nodeChaChaPoly;
  }
  return chosen;
}
