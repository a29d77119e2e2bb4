/**
 * The receiver's answer to LIST (PROTOCOL.md §5.16): a fingerprint of each
 * regular file and folder it holds under the sender's top-level names, in
 * LISTING frames. Only under the `update` policy, and only where the C
 * library lists folders (the handshake offers the feature then): each
 * folder opened in the one above it with O_NOFOLLOW, listed with
 * getdents64, each entry's status by statx in it. A link, or anything but a
 * file or a folder, gets no fingerprint and is never entered; a name that is
 * not UTF-8 is skipped. Bounded: at most LISTING_MAX_FINGERPRINTS
 * fingerprints and LISTING_MAX_VISITS entries looked at (then the listing is
 * incomplete), a folder open per level; the event loop gets a turn every
 * TURN_MS of walking (checked every CLOCK_EVERY entries), so the server's
 * other sessions go on.
 */
import { FrameType } from "../protocol/frame.ts";
import {
  encodeListing,
  FINGERPRINT_BYTES,
  Fingerprinter,
  type List,
  LISTING_FRAME_FINGERPRINTS,
  LISTING_INCOMPLETE,
  LISTING_LAST,
  LISTING_MAX_FINGERPRINTS,
  type Sha256Into,
} from "../protocol/listing.ts";
import { MAX_PATH_DEPTH } from "../protocol/limits.ts";
import { AT_FDCWD } from "../native/libc.ts";
import type { Dirent, Listed, NativeReader } from "../native/native_read.ts";
import { sleep } from "../transport/timer.ts";
import type { FrameWriter } from "../transport/frame_io.ts";
import { childPath, type Inbox, Refusal } from "./inbox.ts";

export interface ListingOptions {
  inbox: Inbox;
  writer: FrameWriter;
  native: NativeReader;
  /** SHA-256 in one go. */
  sha256: (data: Uint8Array) => Uint8Array;
  /** SHA-256 into a buffer, where there is one without an array per call (OpenSSL's). */
  sha256Into?: Sha256Into | null;
  limits: { maxPathBytes: number; maxDepth: number };
  /** Throws once the session was closed from outside. */
  stopIfClosed(): void;
  /** Tests: a lower bound than LISTING_MAX_FINGERPRINTS. */
  maxFingerprints?: number;
}

/** Entries looked at in all (listed or not) before the listing stops, incomplete. */
export const LISTING_MAX_VISITS = 4 * LISTING_MAX_FINGERPRINTS;
/**
 * Walking time between two turns of the event loop: what the server's other sessions wait at
 * most. A turn goes through a timer, about 2 ms idle (Deno's timers tick in milliseconds), so
 * not one every few hundred entries.
 */
const TURN_MS = 25;
/** Entries looked at between two readings of the clock. */
const CLOCK_EVERY = 256;

/** What a listing held: files and folders fingerprinted, and of those the files and their bytes. */
export interface Listing {
  entries: number;
  files: number;
  bytes: number;
}

/**
 * A listing walk kept for the next LIST: a server lists once per sync, and
 * V8 drops optimized code that depends on objects that died (a walk's own
 * classes' shapes), so a walk made anew for each session would run cold
 * again. Kept, it also keeps its frame buffer. Listings that run at the
 * same time each have their own; one is kept.
 */
let kept: ListingWalk | null = null;

/** Sends the LISTING frames answering `list`. */
export async function sendListing(list: List, opts: ListingOptions): Promise<Listing> {
  const walk = kept ?? new ListingWalk();
  kept = null;
  const out = walk.start(opts, list.salt);
  try {
    const seen = new Set<string>();
    try {
      for (const root of list.roots) {
        if (seen.has(root)) continue;
        seen.add(root);
        let parts: string[];
        try {
          parts = opts.inbox.parse(root, opts.limits);
        } catch (err) {
          if (err instanceof Refusal) continue; // announced, it is refused there
          throw err;
        }
        if (parts.length !== 1) continue; // a top-level name only
        await walk.root(root);
      }
    } catch (err) {
      if (!(err instanceof Full)) throw err;
      walk.closeFolders(); // before the last frame, which may wait on the sender
      await walk.end(true);
      return out;
    }
    await walk.end(false);
    return out;
  } finally {
    walk.stop();
    kept ??= walk;
  }
}

/** Thrown when the listing reaches a bound. */
class Full extends Error {}

/** A folder being listed: its descriptor, path, and the entries of its last read not yet taken. */
interface Level {
  fd: number;
  rel: string;
  entries: Dirent[];
  next: number;
}

/**
 * Why `ListingWalk.#take` stopped taking entries: STACK, look at the stack
 * again (the folder's read is used up, or a folder was entered); FULL, a
 * frame is full (send it); TURN, the event loop is due a turn.
 */
const STACK = 0;
const FULL = 1;
const TURN = 2;
type Pause = typeof STACK | typeof FULL | typeof TURN;

/** What `ListingWalk.#entry` did beyond a fingerprint: filled a frame, entered a folder. */
const FILLED = 1;
const ENTERED = 2;

/**
 * One listing at a time: the walk of DIR/`root` for each root, and the
 * fingerprints so far, a frame's worth at a time. Taking entries is
 * synchronous (a listing is thousands of them in a row), a folder's read
 * at a time; the walk awaits only a full frame's sending and the event
 * loop's turns.
 */
class ListingWalk {
  readonly #buf = new Uint8Array(LISTING_FRAME_FINGERPRINTS * FINGERPRINT_BYTES);
  #at = 0;
  #visits = 0;
  #turned = 0;
  #max = 0;
  #opts: ListingOptions | null = null;
  #prints: Fingerprinter | null = null;
  /** What `#prints` was made with besides the salt (reused while a session's are the same). */
  #into: Sha256Into | null = null;
  #listing: Listing = { entries: 0, files: 0, bytes: 0 };
  #stack: Level[] = [];

  /** Starts a listing for `opts` with `salt`: its counts, filled in as it goes. */
  start(opts: ListingOptions, salt: Uint8Array): Listing {
    this.#opts = opts;
    const prints = this.#prints;
    if (
      prints !== null && prints.sha256 === opts.sha256 && this.#into === (opts.sha256Into ?? null)
    ) {
      prints.resalt(salt);
    } else {
      this.#prints = new Fingerprinter(opts.sha256, salt, opts.sha256Into ?? undefined);
      this.#into = opts.sha256Into ?? null;
    }
    this.#at = 0;
    this.#visits = 0;
    this.#turned = performance.now();
    this.#max = Math.min(
      opts.maxFingerprints ?? LISTING_MAX_FINGERPRINTS,
      LISTING_MAX_FINGERPRINTS,
    );
    this.#listing = { entries: 0, files: 0, bytes: 0 };
    return this.#listing;
  }

  /** Ends the listing: closes what it holds open, and lets go of its session. */
  stop(): void {
    this.closeFolders();
    this.#opts = null;
  }

  /** Closes the folders the walk holds open (each, whatever the others do). */
  closeFolders(): void {
    const { native } = this.#opts!;
    for (const level of this.#stack) {
      try {
        native.close(level.fd);
      } catch { /* read-only: nothing to lose */ }
    }
    this.#stack = [];
  }

  /**
   * DIR/`root`, and everything in it when it is a folder: each folder opened in the one above
   * it with O_NOFOLLOW, listed with getdents64, each entry's status by statx in that folder.
   */
  async root(root: string): Promise<void> {
    const opts = this.#opts!;
    const { native } = opts;
    const rootPath = childPath(opts.inbox.root, root);
    let found: Listed;
    try {
      found = native.lstatAt(AT_FDCWD, rootPath, rootPath);
    } catch {
      return;
    }
    if (found.kind === "file") {
      if (this.#file(root, found.size, found.mtime)) await this.#send(0);
      return;
    }
    if (found.kind !== "dir") return;
    if (this.#dir(root, found.mtime, found.mode)) await this.#send(0);
    this.#enter(AT_FDCWD, rootPath, root);
    const stack = this.#stack;
    while (stack.length > 0) {
      const level = stack.at(-1)!;
      if (level.next === level.entries.length) {
        try {
          level.entries = native.list(level.fd);
        } catch {
          level.entries = [];
        }
        level.next = 0;
        if (level.entries.length === 0) {
          stack.pop();
          native.close(level.fd);
        }
        continue;
      }
      const pause = this.#take(level);
      if (pause === FULL) await this.#send(0);
      else if (pause === TURN) await this.#turn();
    }
  }

  /** Opens folder `name` in open folder `dir` to walk it (unless too deep, gone, or a link now). */
  #enter(dir: number, name: string, rel: string): void {
    if (this.#stack.length >= MAX_PATH_DEPTH) return;
    try {
      const fd = this.#opts!.native.openFolderIn(dir, name, rel);
      this.#stack.push({ fd, rel, entries: [], next: 0 });
    } catch { /* gone, unreadable, or a link now: nothing listed in it */ }
  }

  /**
   * Takes `level`'s entries, in order, until its read is used up or a pause is due. In a
   * method called per read, not in the walk's loop, so that its optimized code (not the loop's,
   * made for one call) serves the next session too.
   */
  #take(level: Level): Pause {
    const { entries } = level;
    while (level.next < entries.length) {
      const { name, isDirectory, utf8 } = entries[level.next++]!;
      if (++this.#visits > LISTING_MAX_VISITS) throw new Full();
      const due = this.#visits % CLOCK_EVERY === 0 && performance.now() - this.#turned >= TURN_MS;
      // A name that is not UTF-8: no sender can announce it under this name.
      const did = utf8 === false ? 0 : this.#entry(level, name, isDirectory);
      // A due turn waits for a full frame's sending, itself a turn.
      if ((did & FILLED) !== 0) return FULL;
      if (due) return TURN;
      if ((did & ENTERED) !== 0) return STACK;
    }
    return STACK;
  }

  /** Entry `name` of `level`: its fingerprint, and the folder entered; FILLED | ENTERED. */
  #entry(level: Level, name: string, isDirectory: boolean | null): number {
    const rel = `${level.rel}/${name}`;
    let status: Listed;
    try {
      status = this.#opts!.native.lstatAt(level.fd, name, rel);
    } catch {
      return 0;
    }
    if (status.kind === "file") return this.#file(rel, status.size, status.mtime) ? FILLED : 0;
    if (status.kind !== "dir") return 0;
    const filled = this.#dir(rel, status.mtime, status.mode) ? FILLED : 0;
    if (isDirectory === false) return filled;
    this.#enter(level.fd, name, rel);
    return filled | ENTERED;
  }

  /** A turn of the event loop, then the session's state. */
  async #turn(): Promise<void> {
    await sleep(0);
    this.#turned = performance.now();
    this.#opts!.stopIfClosed();
  }

  /** A file's fingerprint: true when a frame is full. */
  #file(path: string, size: number, mtime: number): boolean {
    this.#room();
    this.#prints!.file(path, size, mtime, this.#buf, this.#at);
    this.#listing.files++;
    this.#listing.bytes += size;
    return this.#added();
  }

  /** A folder's fingerprint: true when a frame is full. */
  #dir(path: string, mtime: number, mode: number): boolean {
    this.#room();
    this.#prints!.dir(path, mtime, mode, this.#buf, this.#at);
    return this.#added();
  }

  #room(): void {
    if (this.#listing.entries >= this.#max) throw new Full();
  }

  #added(): boolean {
    this.#at += FINGERPRINT_BYTES;
    this.#listing.entries++;
    return this.#at === this.#buf.length;
  }

  /** The last frame (`incomplete`: the listing stopped at a bound). */
  end(incomplete: boolean): Promise<void> {
    return this.#send(LISTING_LAST | (incomplete ? LISTING_INCOMPLETE : 0));
  }

  async #send(flags: number): Promise<void> {
    const opts = this.#opts!;
    opts.stopIfClosed();
    const { writer } = opts;
    await writer.frame(FrameType.LISTING, encodeListing(flags, this.#buf.subarray(0, this.#at)));
    await writer.flush();
    this.#at = 0;
    this.#turned = performance.now(); // a frame's sending is a turn too
  }
}
