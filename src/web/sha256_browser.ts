/**
 * src/transport/sha256_openssl.ts for the browser (scripts/build_web.ts puts
 * it in its place): there is no OpenSSL, so SHA-256 comes from the digest's
 * own hasher.
 */
export function opensslSha256(): ((data: Uint8Array) => Uint8Array) | null {
  return null;
}
