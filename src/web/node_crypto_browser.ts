/**
 * The part of node:crypto that the platform-neutral modules bundled into the
 * page use (SHA-256 hashing in src/protocol/digests.ts, through
 * src/node_crypto.ts), for the browser: the build (scripts/build_web.ts) puts
 * this module in the place of node:crypto and of src/node_crypto.ts. The
 * hash is hash-wasm's SHA-256 (WebAssembly, which ferry already uses for
 * xxh128), several times faster in a browser than one in JavaScript.
 */
import { createSHA256 } from "hash-wasm";
import { SharedWasmHasher, WasmTurns } from "../protocol/shared_wasm_hasher.ts";
import { bytesToHex } from "@noble/hashes/utils.js";

/**
 * SHA-256 on one WebAssembly instance, shared by every hasher in turn (shared_wasm_hasher.ts):
 * hash-wasm makes instances only asynchronously, so the one is made as the page loads.
 */
const turns = new WasmTurns(await createSHA256(), "sha256");

export class Hash {
  #hasher: SharedWasmHasher;

  constructor(saved: Uint8Array | null = null) {
    this.#hasher = new SharedWasmHasher(turns, saved);
  }

  update(data: Uint8Array): this {
    this.#hasher.update(data);
    return this;
  }

  digest(): Uint8Array;
  digest(encoding: "hex"): string;
  digest(encoding?: "hex"): Uint8Array | string {
    const out = this.#hasher.digest();
    return encoding === "hex" ? bytesToHex(out) : out;
  }

  /** A new hash that goes on from this one's state. */
  copy(): Hash {
    return new Hash(this.#hasher.save());
  }
}

export function createHash(algorithm: string): Hash {
  if (algorithm !== "sha256") throw new Error(`${algorithm} is not available in this browser`);
  return new Hash();
}

/** src/node_crypto.ts's `nodeCrypto()`, for the page: the part of node:crypto above. */
export function nodeCrypto(): { createHash: typeof createHash } {
  return { createHash };
}
