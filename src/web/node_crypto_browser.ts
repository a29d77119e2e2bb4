/**
 * The part of node:crypto that the platform-neutral modules bundled into the
 * page use (SHA-256 hashing in src/protocol/digests.ts, timingSafeEqual in
 * src/transport/key_schedule.ts), for the browser: the build
 * (scripts/build_web.ts) puts this module in the place of node:crypto. The
 * hash is @noble/hashes's SHA-256, which ferry already uses.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";

type Sha256State = ReturnType<typeof sha256.create>;

export class Hash {
  constructor(readonly state: Sha256State = sha256.create()) {}

  update(data: Uint8Array): this {
    this.state.update(data);
    return this;
  }

  digest(): Uint8Array;
  digest(encoding: "hex"): string;
  digest(encoding?: "hex"): Uint8Array | string {
    const out = this.state.digest();
    return encoding === "hex" ? bytesToHex(out) : out;
  }

  copy(): Hash {
    return new Hash(this.state.clone());
  }
}

export function createHash(algorithm: string): Hash {
  if (algorithm !== "sha256") throw new Error(`${algorithm} is not available in this browser`);
  return new Hash();
}

/** Compares in time independent of where the bytes differ; throws on different lengths, as Node does. */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) throw new RangeError("inputs must have the same length");
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}
