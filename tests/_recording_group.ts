/**
 * A build of ristretto255 (src/transport/ristretto255.ts) that keeps every
 * scalar it is handed, so that a test can see it wiped once the run is over.
 */
import type { Ristretto255 } from "../src/transport/ristretto255.ts";
import { nobleRistretto255 } from "../src/transport/ristretto255_noble.ts";

/** @noble/curves' build, pushing each scalar `multiply` takes (the caller's array) to `handed`. */
export function recordingGroup(handed: Uint8Array[]): Ristretto255 {
  return {
    ...nobleRistretto255,
    multiply(y, x) {
      handed.push(y);
      return nobleRistretto255.multiply(y, x);
    },
  };
}
