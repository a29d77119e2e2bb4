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

/** Sends the LISTING frames answering `list`. */
export async function sendListing(list: List, opts: ListingOptions): Promise<Listing> {
  const out = new ListingOut(
    opts,
    new Fingerprinter(opts.sha256, list.salt, opts.sha256Into ?? undefined),
  );
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
      await walkRoot(root, opts, out);
    }
  } catch (err) {
    if (!(err instanceof Full)) throw err;
    await out.end(true);
    return out.listing;
  }
  await out.end(false);
  return out.listing;
}

/** Thrown when the listing reaches a bound. */
class Full extends Error {}

/**
 * The fingerprints so far, a frame's worth at a time. Taking an entry is
 * synchronous (a listing is thousands of them in a row); the walk awaits
 * only a full frame's sending and the event loop's turns.
 */
class ListingOut {
  readonly #buf = new Uint8Array(LISTING_FRAME_FINGERPRINTS * FINGERPRINT_BYTES);
  #at = 0;
  #visits = 0;
  #turned = performance.now();
  readonly #max: number;
  readonly listing: Listing = { entries: 0, files: 0, bytes: 0 };

  constructor(readonly opts: ListingOptions, readonly prints: Fingerprinter) {
    this.#max = Math.min(
      opts.maxFingerprints ?? LISTING_MAX_FINGERPRINTS,
      LISTING_MAX_FINGERPRINTS,
    );
  }

  /** One entry looked at: true when the event loop is due a turn (`turn`). */
  visit(): boolean {
    if (++this.#visits > LISTING_MAX_VISITS) throw new Full();
    return this.#visits % CLOCK_EVERY === 0 && performance.now() - this.#turned >= TURN_MS;
  }

  /** A turn of the event loop, then the session's state. */
  async turn(): Promise<void> {
    await sleep(0);
    this.#turned = performance.now();
    this.opts.stopIfClosed();
  }

  /** A file's fingerprint: true when a frame is full (send it with `sendFull`). */
  file(path: string, size: number, mtime: number): boolean {
    this.#room();
    this.prints.file(path, size, mtime, this.#buf, this.#at);
    this.listing.files++;
    this.listing.bytes += size;
    return this.#added();
  }

  /** A folder's fingerprint: true when a frame is full. */
  dir(path: string, mtime: number, mode: number): boolean {
    this.#room();
    this.prints.dir(path, mtime, mode, this.#buf, this.#at);
    return this.#added();
  }

  #room(): void {
    if (this.listing.entries >= this.#max) throw new Full();
  }

  #added(): boolean {
    this.#at += FINGERPRINT_BYTES;
    this.listing.entries++;
    return this.#at === this.#buf.length;
  }

  sendFull(): Promise<void> {
    return this.#send(0);
  }

  end(incomplete: boolean): Promise<void> {
    return this.#send(LISTING_LAST | (incomplete ? LISTING_INCOMPLETE : 0));
  }

  async #send(flags: number): Promise<void> {
    this.opts.stopIfClosed();
    const { writer } = this.opts;
    await writer.frame(FrameType.LISTING, encodeListing(flags, this.#buf.subarray(0, this.#at)));
    await writer.flush();
    this.#at = 0;
  }
}

/**
 * DIR/`root`, and everything in it when it is a folder: each folder opened in the one above it
 * with O_NOFOLLOW, listed with getdents64, each entry's status by statx in that folder.
 */
async function walkRoot(root: string, opts: ListingOptions, out: ListingOut): Promise<void> {
  const { native } = opts;
  const rootPath = childPath(opts.inbox.root, root);
  let found: Listed;
  try {
    found = native.lstatAt(AT_FDCWD, rootPath, rootPath);
  } catch {
    return;
  }
  if (found.kind === "file") {
    if (out.file(root, found.size, found.mtime)) await out.sendFull();
    return;
  }
  if (found.kind !== "dir") return;
  if (out.dir(root, found.mtime, found.mode)) await out.sendFull();
  const stack: { fd: number; rel: string; entries: Dirent[]; next: number }[] = [];
  const enter = (dir: number, name: string, rel: string) => {
    if (stack.length >= MAX_PATH_DEPTH) return;
    try {
      stack.push({ fd: native.openFolderIn(dir, name, rel), rel, entries: [], next: 0 });
    } catch { /* gone, unreadable, or a link now: nothing listed in it */ }
  };
  enter(AT_FDCWD, rootPath, root);
  try {
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
          continue;
        }
      }
      const { name, isDirectory, utf8 } = level.entries[level.next++]!;
      if (out.visit()) await out.turn();
      if (utf8 === false) continue; // no sender can announce it under this name
      const rel = `${level.rel}/${name}`;
      let status: Listed;
      try {
        status = native.lstatAt(level.fd, name, rel);
      } catch {
        continue;
      }
      let full: boolean;
      if (status.kind === "file") full = out.file(rel, status.size, status.mtime);
      else if (status.kind === "dir") full = out.dir(rel, status.mtime, status.mode);
      else continue;
      if (full) await out.sendFull();
      if (status.kind === "dir" && isDirectory !== false) enter(level.fd, name, rel);
    }
  } finally {
    for (const level of stack) native.close(level.fd);
  }
}
