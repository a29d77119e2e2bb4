/**
 * src/transport/short_hashes.ts for the browser (scripts/build_web.ts puts it
 * in its place): there is no native library, so the hashes are
 * @noble/hashes'.
 */
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 as nobleSha256, sha512 as nobleSha512 } from "@noble/hashes/sha2.js";

export function sha256(data: Uint8Array): Uint8Array {
  return nobleSha256(data);
}

export function sha512(data: Uint8Array): Uint8Array {
  return nobleSha512(data);
}

export function hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
  return hmac(nobleSha256, key, data);
}

/** The one build there is (short_hashes.ts' `shortHashes()`). */
export function shortHashes(): {
  name: "@noble/hashes";
  sha256: typeof sha256;
  sha512: typeof sha512;
  hmacSha256: typeof hmacSha256;
} {
  return { name: "@noble/hashes", sha256, sha512, hmacSha256 };
}

/** short_hashes.ts' `loadShortHashes()`: the same one build. */
export function loadShortHashes(): Promise<ReturnType<typeof shortHashes>> {
  return Promise.resolve(shortHashes());
}
