/**
 * src/transport/ristretto255_load.ts for the browser (scripts/build_web.ts
 * puts it in its place): there is no native library, so CPace's group is
 * @noble/curves' build.
 */
import type { Ristretto255 } from "../transport/ristretto255.ts";
import { nobleRistretto255 } from "../transport/ristretto255_noble.ts";

export function loadRistretto255(): Promise<Ristretto255> {
  return Promise.resolve(nobleRistretto255);
}
