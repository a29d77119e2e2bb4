/**
 * Byte arrays: joined, compared in constant time, written as lowercase hex
 * and read back, made from text. These few lines are ferry's own so that a
 * send on a machine whose libraries do the cryptography (OpenSSL,
 * libsodium) loads no npm package at all: the first one a process imports
 * costs it a few milliseconds (docs/PERFORMANCE.md).
 */

/** `arrays` one after the other, in a new array. */
export function concatBytes(...arrays: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const a of arrays) length += a.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const a of arrays) {
    out.set(a, at);
    at += a.length;
  }
  return out;
}

/**
 * Whether `a` and `b` hold the same bytes, in time that depends on their
 * length only, never on where they differ (for secrets: a confirmation tag).
 * The usual construction, as in @noble's `equalBytes` and Go's
 * `subtle.ConstantTimeCompare`: every byte is looked at, the differences
 * gathered with OR.
 */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** `bytes` as lowercase hex, two digits a byte. */
export function bytesToHex(bytes: Uint8Array): string {
  let hex = "";
  for (let i = 0; i < bytes.length; i++) hex += HEX[bytes[i]!]!;
  return hex;
}

/** The bytes that `hex` (an even number of hex digits, either case) writes; throws on anything else. */
export function hexToBytes(hex: string): Uint8Array {
  if (hex.length % 2 !== 0) throw new Error(`hex of odd length ${hex.length}`);
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) {
    const high = digit(hex.charCodeAt(2 * i));
    const low = digit(hex.charCodeAt(2 * i + 1));
    if (high < 0 || low < 0) throw new Error(`not hex at ${2 * i}: ${JSON.stringify(hex)}`);
    out[i] = high * 16 + low;
  }
  return out;
}

function digit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48; // 0-9
  if (c >= 97 && c <= 102) return c - 87; // a-f
  if (c >= 65 && c <= 70) return c - 55; // A-F
  return -1;
}

const ENCODER = new TextEncoder();

/** `text` in UTF-8. */
export function utf8ToBytes(text: string): Uint8Array {
  return ENCODER.encode(text);
}
