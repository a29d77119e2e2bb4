/**
 * The record layer's two AEAD suites behind one small interface:
 *
 * - `aes-256-gcm`: AES-256 in Galois/Counter Mode (NIST SP 800-38D), 96-bit nonce, 128-bit tag.
 * - `chacha20-poly1305`: AEAD_CHACHA20_POLY1305 (RFC 8439 §2.8).
 *
 * Each suite has two engines that produce the same bytes:
 *
 * - OpenSSL's libcrypto through Deno's FFI (aead_openssl.ts), when the system
 *   has OpenSSL 3 at a known path and ferry was given ffi permission for it.
 *   It encrypts straight into the caller's buffer and decrypts in place: no
 *   allocation per record.
 * - node:crypto (aead_node.ts), always available: the fallback. Its
 *   ChaCha20-Poly1305 is about half OpenSSL's speed, its AES-GCM an order of
 *   magnitude slower (docs/PERFORMANCE.md).
 *
 * So a side offers AES-256-GCM only when it has OpenSSL (`fastSuites`), and
 * the handshake picks it only when both sides do. An engine is used only
 * after it passes its suite's published test vector.
 */
import { nodeAead } from "./aead_node.ts";
import { loadOpensslAead } from "./aead_openssl.ts";

export { type Aead, BASELINE_SUITE, isSuite, type Suite, SUITES } from "./aead_suite.ts";
import { type Aead, BASELINE_SUITE, type Suite } from "./aead_suite.ts";
import { passesKnownAnswer } from "./aead_known_answer.ts";
export { fromHex, KNOWN_ANSWERS, passesKnownAnswer } from "./aead_known_answer.ts";

const chosen = new Map<Suite, Aead>();

/**
 * The fastest engine for `suite` that works here: OpenSSL when available,
 * permitted and correct, else node:crypto.
 */
export function defaultAead(suite: Suite): Aead {
  let aead = chosen.get(suite);
  if (aead === undefined) {
    const openssl = loadOpensslAead(suite);
    aead = openssl !== null && passesKnownAnswer(openssl) ? openssl : nodeAead(suite);
    if (!passesKnownAnswer(aead)) throw new Error(`no working ${suite} here (a broken runtime)`);
    chosen.set(suite, aead);
  }
  return aead;
}

/**
 * The suites this process offers, best first: AES-256-GCM only where it runs
 * on OpenSSL (node:crypto's is ten times slower than its ChaCha20-Poly1305),
 * then the baseline.
 */
export function fastSuites(): Suite[] {
  return defaultAead("aes-256-gcm").engine === "openssl"
    ? ["aes-256-gcm", BASELINE_SUITE]
    : [BASELINE_SUITE];
}
