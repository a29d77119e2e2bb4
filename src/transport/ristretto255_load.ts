/**
 * Which build of ristretto255 (ristretto255.ts) CPace uses: libsodium's
 * where it loads, else @noble/curves', whose modules are imported only then.
 */
import type { Ristretto255 } from "./ristretto255.ts";
import { sodiumRistretto255 } from "./ristretto255_sodium.ts";

/**
 * libsodium's build where it loads (src/native/libsodium.ts), else
 * @noble/curves', imported only then.
 */
export function loadRistretto255(): Promise<Ristretto255> {
  if (loaded === undefined) {
    loaded = load();
    loaded.catch(() => loaded = undefined); // a failed import is tried again, not kept
  }
  return loaded;
}

let loaded: Promise<Ristretto255> | undefined;

async function load(): Promise<Ristretto255> {
  return sodiumRistretto255() ?? (await import("./ristretto255_noble.ts")).nobleRistretto255;
}
