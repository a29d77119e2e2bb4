/**
 * src/transport/native_digests.ts for the browser (scripts/build_web.ts puts
 * it in its place): there is no native library, so every digest comes from
 * its own build in src/protocol/digests.ts.
 */
import type { NativeDigests } from "../protocol/digests.ts";

export function nativeDigests(): NativeDigests {
  return {};
}
