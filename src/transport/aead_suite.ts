/**
 * The record layer's AEAD suites and the interface every engine implements
 * (aead.ts picks an engine; aead_node.ts and aead_openssl.ts are the two).
 * A leaf: the engines import it, and aead.ts imports them.
 */

/** The record suites, in ferry's order of preference. */
export const SUITES = ["aes-256-gcm", "chacha20-poly1305"] as const;
export type Suite = typeof SUITES[number];
/** The suite every peer supports, and the one a peer that names none means. */
export const BASELINE_SUITE: Suite = "chacha20-poly1305";

export function isSuite(name: string): name is Suite {
  return (SUITES as readonly string[]).includes(name);
}

export interface Aead {
  /** Which algorithm this is. */
  readonly suite: Suite;
  /** Which implementation this is: "openssl" or "node:crypto". */
  readonly engine: string;
  /**
   * Encrypts the concatenation of `plaintext` into `out`, followed by the
   * 16-byte tag over `aad` and the ciphertext. `out` is exactly the
   * plaintext's total length + 16 and must not overlap the plaintext.
   * `key` is 32 bytes, `nonce` 12.
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
  /**
   * `open`, writing the plaintext into the pieces of `out` in turn (their
   * total length is the ciphertext's), not in place. Returns whether the tag
   * verified; when it did not, `out` holds unverified bytes the caller must
   * discard.
   */
  openInto(
    key: Uint8Array,
    nonce: Uint8Array,
    aad: Uint8Array,
    ciphertext: Uint8Array,
    tag: Uint8Array,
    out: readonly Uint8Array[],
  ): boolean;
}
