/**
 * HKDF with HMAC-SHA-256 (RFC 5869), over short_hashes.ts's HMAC: the key
 * schedule's KDF (key_schedule.ts). Checked against RFC 5869's vectors and
 * node:crypto's (tests/short_hashes_test.ts).
 */
import { hmacSha256 } from "./short_hashes.ts";

const HASH_BYTES = 32;

/** HKDF-Extract(salt, IKM) (RFC 5869 §2.2); a missing salt is HashLen zero bytes. */
export function hkdfExtract(ikm: Uint8Array, salt?: Uint8Array): Uint8Array {
  return hmacSha256(salt ?? new Uint8Array(HASH_BYTES), ikm);
}

/** HKDF-Expand(PRK, info, L) (RFC 5869 §2.3), L at most 255 * HashLen. */
export function hkdfExpand(prk: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  if (!Number.isSafeInteger(length) || length < 0 || length > 255 * HASH_BYTES) {
    throw new RangeError(`HKDF-Expand: length ${length} out of range`);
  }
  const okm = new Uint8Array(length);
  // T(i) = HMAC(PRK, T(i-1) | info | i), T(0) empty.
  const input = new Uint8Array(HASH_BYTES + info.length + 1);
  let previous = 0;
  for (let i = 1, at = 0; at < length; i++) {
    input.set(info, previous);
    input[previous + info.length] = i;
    const t = hmacSha256(prk, input.subarray(0, previous + info.length + 1));
    okm.set(t.subarray(0, Math.min(HASH_BYTES, length - at)), at);
    at += HASH_BYTES;
    input.set(t, 0);
    previous = HASH_BYTES;
    t.fill(0);
  }
  input.fill(0);
  return okm;
}
