/**
 * The part of node:crypto that the platform-neutral modules bundled into the
 * page use (SHA-256 hashing in src/protocol/digests.ts, timingSafeEqual in
 * src/transport/key_schedule.ts), for the browser: the build
 * (scripts/build_web.ts) puts this module in the place of node:crypto. The
 * hash is hash-wasm's SHA-256 (WebAssembly, which ferry already uses for
 * xxh128), several times faster in a browser than one in JavaScript.
 */
import { createSHA256, type IHasher } from "hash-wasm";
import { bytesToHex } from "@noble/hashes/utils.js";

/**
 * SHA-256 on one WebAssembly instance, shared by every hasher: hash-wasm
 * makes instances only asynchronously (so one is made as the page loads),
 * and each has its own memory. The instance holds one hasher's state at a
 * time; when another's turn comes, the holder's state is saved and the
 * other's loaded (digests.ts's xxh128 does the same). A file is hashed by
 * one hasher at a time, so a transfer swaps only around a resume.
 */
const wasm: IHasher = await createSHA256();
let holder: Hash | null = null;

export class Hash {
  #saved: Uint8Array | null;
  #done = false;

  constructor(saved: Uint8Array | null = null) {
    this.#saved = saved;
  }

  #take(): IHasher {
    if (this.#done) throw new Error("sha256: the hash was used after digest()");
    if (holder !== this) {
      if (holder !== null) holder.#saved = wasm.save();
      if (this.#saved === null) wasm.init();
      else wasm.load(this.#saved);
      this.#saved = null;
      holder = this;
    }
    return wasm;
  }

  update(data: Uint8Array): this {
    this.#take().update(data);
    return this;
  }

  digest(): Uint8Array;
  digest(encoding: "hex"): string;
  digest(encoding?: "hex"): Uint8Array | string {
    const out = this.#take().digest("binary");
    this.#done = true;
    holder = null;
    return encoding === "hex" ? bytesToHex(out) : out;
  }

  /** A new hash that goes on from this one's state. */
  copy(): Hash {
    return new Hash(this.#take().save());
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
