/**
 * XXH3-128 from the system's libxxhash (src/native/libxxhash.ts): the same
 * value as the WebAssembly build in src/protocol/digests.ts, faster
 * (docs/PERFORMANCE.md), and without the WebAssembly instance's memory.
 * Used only where the library is xxHash 0.8 or later (XXH3-128's output is
 * fixed from 0.8.0 on) and gives the known values of "abc" and of 2,048
 * bytes long enough for XXH3's vector code, whole and in pieces. It calls
 * through xxHash's x86 dispatcher (AVX2, AVX-512) where the library has it
 * and it passes those checks, else the library's plain calls.
 */
import { type Digest, digestHex, type Hasher } from "../protocol/digests.ts";
import { type Libxxhash, loadLibxxhash } from "../native/libxxhash.ts";

/** XXH3-128("abc") as `xxh128sum` prints it. */
const ABC_XXH128 = "06b05ab6733a618578af5f94892f3950";

/**
 * 2,048 bytes (byte i is (31i + 7) mod 251) and their XXH3-128: past 240 bytes, XXH3 runs its
 * stripes through the vector code the dispatcher chooses, which "abc" never reaches.
 */
const LONG_LENGTH = 2048;
const LONG_XXH128 = "aceedd29e1caaad363a78a59658d80f4";

/** XXH_versionNumber() of xxHash 0.8.0. */
const FIRST_STABLE_VERSION = 800;

let loaded: Digest | null | undefined;

/**
 * XXH3-128 through libxxhash, or null where no permitted library loads or
 * it fails its checks (then the WebAssembly build is used). Pass `lib` to
 * use another library (tests; nothing is cached).
 */
export function nativeXxh128(lib?: Libxxhash | null): Digest | null {
  if (lib !== undefined) return make(lib);
  if (loaded === undefined) loaded = make(loadLibxxhash());
  return loaded;
}

function make(lib: Libxxhash | null): Digest | null {
  if (lib === null) return null;
  try {
    if (lib.XXH_versionNumber() < FIRST_STABLE_VERSION) return null;
    // A dropped hasher (a transfer cut short) frees its state when collected.
    const states = new FinalizationRegistry<Deno.PointerObject>((state) =>
      lib.XXH3_freeState(state)
    );
    // The dispatching calls where the library has them (AVX2, AVX-512), else the plain ones.
    const oneShot = lib.XXH3_128bits_dispatch ?? null;
    const update = lib.XXH3_128bits_update_dispatch ?? null;
    const dispatching = oneShot !== null && update !== null
      ? checked(lib, states, oneShot, update)
      : null;
    return dispatching ?? checked(lib, states, lib.XXH3_128bits, lib.XXH3_128bits_update);
  } catch {
    return null;
  }
}

type OneShot = Libxxhash["XXH3_128bits"];
type Update = Libxxhash["XXH3_128bits_update"];

/**
 * The digest made of `oneShot` and `update`, or null if it fails a known answer (or a call
 * fails): "abc", and 2,048 bytes whole and in pieces that cross XXH3's 256-byte buffer and its
 * 1,024-byte block.
 */
function checked(
  lib: Libxxhash,
  states: FinalizationRegistry<Deno.PointerObject>,
  oneShot: OneShot,
  update: Update,
): Digest | null {
  const digest: Digest = {
    name: "xxh128",
    length: 16,
    hasher: () => new NativeHasher(lib, update, states),
    of: (data) => canonical(oneShot(data, BigInt(data.length))),
  };
  try {
    const abc = new TextEncoder().encode("abc");
    const long = Uint8Array.from({ length: LONG_LENGTH }, (_, i) => (i * 31 + 7) % 251);
    return gives(digest, abc, [1], ABC_XXH128) && gives(digest, long, [100, 300, 1100], LONG_XXH128)
      ? digest
      : null;
  } catch {
    return null;
  }
}

/** Whether `digest` gives `hex` for `data` whole, and hashed in pieces cut at `cuts`. */
function gives(digest: Digest, data: Uint8Array, cuts: number[], hex: string): boolean {
  const hasher = digest.hasher();
  let at = 0;
  for (const cut of [...cuts, data.length]) {
    hasher.update(data.subarray(at, cut));
    at = cut;
  }
  return digestHex(digest.of(data)) === hex && digestHex(hasher.digest()) === hex;
}

/** Incremental XXH3-128 on a native state, freed by `digest()` or, if dropped, when collected. */
class NativeHasher implements Hasher {
  readonly #lib: Libxxhash;
  readonly #update: Update;
  readonly #states: FinalizationRegistry<Deno.PointerObject>;
  #state: Deno.PointerObject | null;

  constructor(lib: Libxxhash, update: Update, states: FinalizationRegistry<Deno.PointerObject>) {
    const state = lib.XXH3_createState();
    if (state === null) throw new Error("XXH3_createState failed");
    if (lib.XXH3_128bits_reset(state) !== 0) {
      lib.XXH3_freeState(state);
      throw new Error("XXH3_128bits_reset failed");
    }
    this.#lib = lib;
    this.#update = update;
    this.#states = states;
    this.#state = state;
    states.register(this, state, this);
  }

  update(data: Uint8Array): void {
    if (this.#update(this.#live(), data, BigInt(data.length)) !== 0) {
      throw new Error("XXH3_128bits_update failed");
    }
  }

  digest(): Uint8Array {
    const state = this.#live();
    const out = canonical(this.#lib.XXH3_128bits_digest(state));
    this.#state = null;
    this.#states.unregister(this);
    this.#lib.XXH3_freeState(state);
    return out;
  }

  #live(): Deno.PointerObject {
    if (this.#state === null) throw new Error("the hasher has given its digest");
    return this.#state;
  }
}

/**
 * XXH128_canonicalFromHash: the high half then the low half, each big-endian, from the struct's
 * two little-endian halves (low first). On a big-endian machine the known answer fails instead.
 */
function canonical(hash: Uint8Array): Uint8Array {
  return hash.reverse();
}
