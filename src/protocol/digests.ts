/**
 * The digests a FILE_END can carry (PROTOCOL.md §8): their names, lengths
 * and implementations.
 *
 * - `xxh128` is XXH3-128 (xxHash 0.8, the `xxh128sum` value), from the
 *   system's libxxhash where it loads (src/transport/xxh128_native.ts), else
 *   the WebAssembly of the npm package hash-wasm: the sender's first choice,
 *   at two to four times SHA-256's speed on each side (docs/PERFORMANCE.md). It is
 *   not collision resistant: against an attacker the encrypted channel's
 *   records authenticate every byte, and the digest checks the path from
 *   the sender's read to the receiver's write (rsync's whole-file check is
 *   the same function).
 * - `sha256` is SHA-256 from node:crypto (loaded on first use,
 *   src/node_crypto.ts): mandatory (every peer has it), cryptographic end to
 *   end (`send --digest sha256`); a resume prefix is always checked with it.
 *
 * The xxh128 WebAssembly is loaded on first use and only where no native
 * build is given, so a run that never needs it (and `ferry --version`) does
 * not pay for it.
 */
import type { Hash } from "node:crypto";
import { nodeCrypto } from "../node_crypto.ts";
import type { IHasher } from "hash-wasm";
import { SharedWasmHasher, WasmTurns } from "./shared_wasm_hasher.ts";

/** Every digest this build computes, in the order a sender offers them by default. */
export const DIGEST_NAMES = ["xxh128", "sha256"] as const;
export type DigestName = typeof DIGEST_NAMES[number];

/** The digest every peer must support. */
export const MANDATORY_DIGEST: DigestName = "sha256";

export function isDigestName(name: string): name is DigestName {
  return (DIGEST_NAMES as readonly string[]).includes(name);
}

/** A digest as lowercase hex, as `sha256sum` prints it. */
export function digestHex(digest: Uint8Array): string {
  let hex = "";
  for (const byte of digest) hex += HEX[byte]!;
  return hex;
}
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** An incremental digest over one file's bytes. */
export interface Hasher {
  update(data: Uint8Array): void;
  /** The digest of all the bytes; the hasher is done. */
  digest(): Uint8Array;
}

export interface Digest {
  readonly name: DigestName;
  /** Bytes in a digest (FILE_END carries up to 64). */
  readonly length: number;
  hasher(): Hasher;
  /** The digest of `data`, in one go. */
  of(data: Uint8Array): Uint8Array;
}

const loaded = new Map<DigestName, Promise<Digest>>();

/** A whole buffer's SHA-256 from another engine (OpenSSL's through FFI: cheaper per call). */
export type Sha256OneShot = (data: Uint8Array) => Uint8Array;

/**
 * Native builds of the digests, where the system has them
 * (src/transport/native_digests.ts): the same values, at a lower cost.
 */
export interface NativeDigests {
  /** SHA-256's `of` (whole small files), instead of node:crypto's. */
  readonly sha256OneShot?: Sha256OneShot | null;
  /** XXH3-128 in full, instead of the WebAssembly build. */
  readonly xxh128?: Digest | null;
}

/** The digest named `name`, ready to use synchronously; from `native` where it has it. */
export function loadDigest(name: DigestName, native: NativeDigests = {}): Promise<Digest> {
  if (name === "sha256" && native.sha256OneShot) {
    return Promise.resolve({ ...SHA256, of: native.sha256OneShot });
  }
  if (name === "xxh128" && native.xxh128) return Promise.resolve(native.xxh128);
  let digest = loaded.get(name);
  if (digest === undefined) {
    digest = name === "sha256" ? Promise.resolve(SHA256) : loadXxh128();
    loaded.set(name, digest);
    digest.catch(() => loaded.delete(name));
  }
  return digest;
}

class Sha256Hasher implements Hasher {
  readonly #hash: Hash;
  constructor(hash: Hash = nodeCrypto().createHash("sha256")) {
    this.#hash = hash;
  }
  update(data: Uint8Array): void {
    this.#hash.update(data);
  }
  digest(): Uint8Array {
    return new Uint8Array(this.#hash.digest());
  }
}

/**
 * Hashes a resume prefix both ways at once: with the session's digest, to
 * go on over the rest of the file, and with SHA-256, the proof a resume
 * offer carries (PROTOCOL.md §7). When the session's digest is SHA-256 the
 * two are one pass.
 */
export class PrefixHash {
  readonly #proof: Hash = nodeCrypto().createHash("sha256");
  readonly #hash: Hasher | null;

  constructor(readonly digest: Digest) {
    this.#hash = digest.name === "sha256" ? null : digest.hasher();
  }

  update(data: Uint8Array): void {
    this.#proof.update(data);
    this.#hash?.update(data);
  }

  /** The session's hasher over the prefix (to go on with), and the prefix's SHA-256 in hex. */
  finish(): { hash: Hasher; proof: string } {
    const proof = this.#proof.copy().digest("hex");
    return { hash: this.#hash ?? new Sha256Hasher(this.#proof), proof };
  }
}

const SHA256: Digest = {
  name: "sha256",
  length: 32,
  hasher: () => new Sha256Hasher(),
  of: (data) => new Uint8Array(nodeCrypto().createHash("sha256").update(data).digest()),
};

/**
 * hash-wasm's ES module build: its main file is CommonJS, which starts Deno's Node module loader
 * (about 7 ms of a sender's start-up).
 */
async function loadXxh128(): Promise<Digest> {
  const { createXXHash128 }: typeof import("hash-wasm") = await import(
    "hash-wasm/dist/index.esm.js"
  );
  return xxh128Digest(await createXXHash128());
}

/**
 * XXH3-128 on one WebAssembly instance, shared by every file in the process (its state is 580
 * bytes to save and load when two sessions interleave their files; shared_wasm_hasher.ts).
 */
export function xxh128Digest(wasm: IHasher): Digest {
  const turns = new WasmTurns(wasm, "xxh128");
  return {
    name: "xxh128",
    length: 16,
    hasher: () => new SharedWasmHasher(turns),
    of(data) {
      const hasher = new SharedWasmHasher(turns);
      hasher.update(data);
      return hasher.digest();
    },
  };
}
