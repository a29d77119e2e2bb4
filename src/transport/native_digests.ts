/**
 * The native builds of the digests this system has (src/protocol/digests.ts
 * `NativeDigests`): SHA-256 one-shot from OpenSSL's libcrypto, XXH3-128 from
 * libxxhash. Each is null where its library does not load or fails its
 * known answer; the browser build puts src/web/native_digests_browser.ts in
 * this module's place.
 */
import type { NativeDigests } from "../protocol/digests.ts";
import { opensslSha256 } from "./sha256_openssl.ts";
import { nativeXxh128 } from "./xxh128_native.ts";

/** The native digests, loaded once (each module caches its own). */
export function nativeDigests(): NativeDigests {
  return { sha256OneShot: opensslSha256(), xxh128: nativeXxh128() };
}
