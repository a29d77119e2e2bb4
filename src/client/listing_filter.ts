/**
 * A sync's walk, less what the receiver listed (PROTOCOL.md §5.16): an
 * entry whose fingerprint the receiver sent is its own copy already, so it
 * is not announced, and a file is counted as unchanged. A folder is
 * announced anyway when anything beneath it was (its entry follows its
 * contents, as always, for a receiver that sets its metadata after them).
 * Until the listing has come, the walk goes on into a bounded buffer.
 */
import {
  FINGERPRINT_BYTES,
  Fingerprinter,
  type FingerprintSet,
  type Listed,
  type Sha256Into,
} from "../protocol/listing.ts";
import { sleep } from "../transport/timer.ts";
import type { Outcomes } from "./send_types.ts";
import type { LocalEntry, WalkItem, WalkItems } from "./walk.ts";

/** Entries walked ahead while the listing is still coming. */
const LOOKAHEAD = 16384;
/**
 * Entries walked ahead before the first look at the socket: a receiver that holds little under
 * the names answers at once, and the transfer need not wait for more of the walk.
 */
const FIRST_LOOK = 1024;
/**
 * Walking time between two later looks. A look is a turn of the event loop through a timer,
 * about 2 ms idle (Deno's timers tick in milliseconds), so not one every few thousand entries.
 */
const LOOK_MS = 50;
/** Entries between two readings of the clock. */
const CLOCK_EVERY = 256;

export class ListingFilter implements WalkItems {
  #set: FingerprintSet | null = null;
  /** False once the listing came (or failed, or was not whole: then nothing is left out). */
  #waiting = true;
  #ahead: (WalkItem | null)[] = [];
  /**
   * The fingerprint of each entry in `#ahead`, made while waiting: back to back in one buffer
   * (no object per entry to keep alive), `#printed` saying which have one.
   */
  readonly #aheadPrints = new Uint8Array(FINGERPRINT_BYTES * LOOKAHEAD);
  readonly #printed = new Uint8Array(LOOKAHEAD);
  #next = 0;
  readonly #prints: Fingerprinter;
  /** One fingerprint made to look up (not kept). */
  readonly #print1 = new Uint8Array(FINGERPRINT_BYTES);
  /** Folders beneath which an entry was announced, until their own entry comes. */
  #touched = new Set<string>();
  #unchanged: Listed = { files: 0, bytes: 0 };

  /** Settles once the listing came, or failed (then the session fails on its own). */
  readonly #listing: Promise<void>;

  constructor(
    readonly walk: WalkItems & { pull(): WalkItem | null | Promise<WalkItem | null> },
    listing: Promise<FingerprintSet | null>,
    salt: Uint8Array,
    sha256: (data: Uint8Array) => Uint8Array,
    readonly outcomes: Outcomes,
    /** Counts a file left out in the session's totals (Pipeline.countWalked). */
    readonly counted: (size: number) => void = () => {},
    sha256Into?: Sha256Into | null,
  ) {
    this.#prints = new Fingerprinter(sha256, salt, sha256Into ?? undefined);
    this.#listing = listing.then((set) => {
      this.#set = set;
    }, () => {}).finally(() => this.#waiting = false);
  }

  /** Settles once the listing came, or failed. */
  get settled(): Promise<void> {
    return this.#listing;
  }

  /** What was left out, for LISTED. */
  get unchanged(): Listed {
    return this.#unchanged;
  }

  pull(): WalkItem | null | Promise<WalkItem | null> {
    if (this.#waiting) return this.#walkAhead().then(() => this.pull());
    for (;;) {
      if (this.#next < this.#ahead.length) {
        const at = this.#next;
        const kept = this.#keep(this.#take(), this.#printed[at] === 1 ? at : -1);
        if (kept !== undefined) return kept;
        continue;
      }
      const item = this.walk.pull();
      if (item instanceof Promise) {
        return item.then((i) => {
          const kept = this.#keep(i, -1);
          return kept === undefined ? this.pull() : kept;
        });
      }
      const kept = this.#keep(item, -1);
      if (kept !== undefined) return kept;
    }
  }

  async next(): Promise<IteratorResult<WalkItem>> {
    const item = await this.pull();
    return item === null ? { done: true, value: undefined } : { done: false, value: item };
  }

  return(): Promise<IteratorResult<WalkItem>> {
    return this.walk.return?.() ?? Promise.resolve({ done: true, value: undefined });
  }

  #take(): WalkItem | null {
    const item = this.#ahead[this.#next++]!;
    if (this.#next === this.#ahead.length) {
      this.#ahead = [];
      this.#next = 0;
    }
    return item;
  }

  /** Walks on into the buffer while the listing is coming, looking at the socket now and then. */
  async #walkAhead(): Promise<void> {
    let looked = performance.now();
    while (this.#waiting && this.#ahead.length < LOOKAHEAD && this.#ahead.at(-1) !== null) {
      const pulled = this.walk.pull();
      const item = pulled instanceof Promise ? await pulled : pulled;
      const at = this.#ahead.length;
      const printed = item?.type === "entry" &&
        this.#print(item.entry, this.#aheadPrints, FINGERPRINT_BYTES * at);
      this.#printed[at] = printed ? 1 : 0;
      this.#ahead.push(item);
      const walked = at + 1;
      if (
        walked === FIRST_LOOK ||
        (walked % CLOCK_EVERY === 0 && performance.now() - looked >= LOOK_MS)
      ) {
        await sleep(0);
        looked = performance.now();
      }
    }
    await this.#listing;
  }

  /** Whether the receiver listed `entry` (one always announced never is). */
  #has(entry: LocalEntry): boolean {
    return this.#print(entry, this.#print1, 0) && this.#set!.has(this.#print1);
  }

  /**
   * An entry's fingerprint, written to `dest[at, at + 12)`; false (nothing written) for one that
   * is always announced (unknown size, a text).
   */
  #print(entry: LocalEntry, dest: Uint8Array, at: number): boolean {
    if (entry.kind === "file" && entry.size !== null) {
      this.#prints.file(entry.path, entry.size, entry.mtime, dest, at);
      return true;
    }
    if (entry.kind === "dir") {
      this.#prints.dir(entry.path, entry.mtime, entry.mode, dest, at);
      return true;
    }
    return false;
  }

  /**
   * The item to hand on, or undefined where the receiver has the entry already; `ahead` is where
   * its fingerprint stands in `#aheadPrints` if it was made while waiting, else -1.
   */
  #keep(item: WalkItem | null, ahead: number): WalkItem | null | undefined {
    if (item === null || item.type !== "entry" || this.#set === null) return item;
    const { entry } = item;
    // A folder with an entry announced beneath it is announced (§5.16).
    const touched = entry.kind === "dir" && this.#touched.delete(entry.path);
    if (!touched) {
      const listed = ahead >= 0
        ? this.#set.has(this.#aheadPrints, FINGERPRINT_BYTES * ahead)
        : this.#has(entry);
      if (listed) {
        if (entry.kind === "file") {
          this.#unchanged.files++;
          this.#unchanged.bytes += entry.size!;
          this.counted(entry.size!);
          this.outcomes.unchanged(entry.path, entry.size!);
        }
        return undefined;
      }
    }
    this.#touch(entry.path);
    return item;
  }

  /** Marks the folders above `path` as having an announced entry beneath them. */
  #touch(path: string): void {
    for (let end = path.lastIndexOf("/"); end > 0; end = path.lastIndexOf("/", end - 1)) {
      const folder = path.slice(0, end);
      if (this.#touched.has(folder)) return;
      this.#touched.add(folder);
    }
  }
}
