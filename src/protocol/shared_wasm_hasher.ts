/**
 * An incremental hash on a hash-wasm instance that many hashes share: hash-wasm makes instances
 * only asynchronously, and each has its own memory, so one instance serves them all in turn. It
 * holds one hash's state at a time; when another's turn comes, the holder's state is saved and
 * the other's loaded. A file is hashed by one hasher at a time, so a transfer swaps only when two
 * sessions interleave their files, or around a resume.
 */
import type { IHasher } from "hash-wasm";

/** One shared instance and whose state it holds now. */
export class WasmTurns {
  holder: SharedWasmHasher | null = null;
  constructor(readonly wasm: IHasher, readonly name: string) {}
}

export class SharedWasmHasher {
  #saved: Uint8Array | null;
  #done = false;

  /** A new hash on `turns`'s instance, from the start or from a `save()`d state. */
  constructor(readonly turns: WasmTurns, saved: Uint8Array | null = null) {
    this.#saved = saved;
  }

  #take(): IHasher {
    const { turns } = this;
    if (this.#done) throw new Error(`${turns.name}: the hasher was used after digest()`);
    if (turns.holder !== this) {
      if (turns.holder !== null) turns.holder.#saved = turns.wasm.save();
      if (this.#saved === null) turns.wasm.init();
      else turns.wasm.load(this.#saved);
      this.#saved = null;
      turns.holder = this;
    }
    return turns.wasm;
  }

  update(data: Uint8Array): void {
    this.#take().update(data);
  }

  /** The digest of all the bytes; the hasher is done. */
  digest(): Uint8Array {
    const digest = this.#take().digest("binary");
    this.#done = true;
    this.turns.holder = null;
    return digest;
  }

  /** The state so far, for a new hasher that goes on from it. */
  save(): Uint8Array {
    return this.#take().save();
  }
}
