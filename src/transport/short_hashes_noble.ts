/**
 * SHA-256, SHA-512 and HMAC-SHA-256 from @noble/hashes: the short hashes
 * (short_hashes.ts) where OpenSSL's do not load, imported only then.
 */
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 as nobleSha256, sha512 as nobleSha512 } from "@noble/hashes/sha2.js";

/** short_hashes.ts' `ShortHashes` (not imported from there: that module imports this one). */
export const nobleShortHashes = {
  name: "@noble/hashes" as const,
  sha256: (data: Uint8Array): Uint8Array => nobleSha256(data),
  sha512: (data: Uint8Array): Uint8Array => nobleSha512(data),
  hmacSha256: (key: Uint8Array, data: Uint8Array): Uint8Array => hmac(nobleSha256, key, data),
};
