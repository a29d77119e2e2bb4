/**
 * The record layer's AEAD in the browser (the page of `serve --web`): the
 * build (scripts/build_web.ts) puts this module in the place of
 * src/transport/aead.ts, with the same exports. A browser has neither
 * OpenSSL nor node:crypto, and no WebCrypto either where the page runs: a
 * plain-HTTP page from a LAN address is not a "secure context", so
 * `crypto.subtle` is absent there (and it only answers asynchronously,
 * where the Aead interface and the record layer over it are synchronous).
 * So the suite here is the baseline, ChaCha20-Poly1305 (RFC 8439), from
 * @noble/ciphers: audited, by the author of the @noble/curves and
 * @noble/hashes ferry already uses, and faster in JavaScript than its
 * AES-GCM. It must reproduce the suite's published test vector before it is
 * used, as every engine must.
 */
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { concatBytes } from "../protocol/bytes.ts";
import { passesKnownAnswer } from "../transport/aead_known_answer.ts";

export { type Aead, BASELINE_SUITE, isSuite, type Suite, SUITES } from "../transport/aead_suite.ts";
import { type Aead, BASELINE_SUITE, type Suite } from "../transport/aead_suite.ts";

/** `pieces` as one array: the piece itself when there is one. */
function joined(pieces: readonly Uint8Array[]): Uint8Array {
  return pieces.length === 1 ? pieces[0]! : concatBytes(...pieces);
}

/** ChaCha20-Poly1305 from @noble/ciphers, behind the Aead interface. */
export const nobleChacha: Aead = {
  suite: "chacha20-poly1305",
  engine: "@noble/ciphers",
  seal(key, nonce, aad, plaintext, out) {
    out.set(chacha20poly1305(key, nonce, aad).encrypt(joined(plaintext)));
  },
  open(key, nonce, aad, ciphertext, tag) {
    try {
      return chacha20poly1305(key, nonce, aad).decrypt(joined([ciphertext, tag]));
    } catch {
      return null;
    }
  },
  openInto(key, nonce, aad, ciphertext, tag, out) {
    const plain = this.open(key, nonce, aad, ciphertext, tag);
    if (plain === null || plain.length !== ciphertext.length) return false;
    let at = 0;
    for (const piece of out) {
      piece.set(plain.subarray(at, at + piece.length));
      at += piece.length;
    }
    return true;
  },
};

let checked = false;

export function defaultAead(suite: Suite): Aead {
  if (suite !== BASELINE_SUITE) throw new Error(`${suite} is not available in this browser`);
  if (!checked) {
    if (!passesKnownAnswer(nobleChacha)) throw new Error("ChaCha20-Poly1305 fails its test vector");
    checked = true;
  }
  return nobleChacha;
}

/** The suites the page offers: the baseline only. */
export function fastSuites(): Suite[] {
  return [BASELINE_SUITE];
}
