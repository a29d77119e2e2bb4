/**
 * The receiver's answer to LIST (PROTOCOL.md §5.16): a fingerprint of each
 * regular file and folder it holds under the sender's top-level names, in
 * LISTING frames. Only under the `update` policy (the handshake offers the
 * feature then). Never through a link: a link, or anything but a file or a
 * folder, gets no fingerprint and is not entered; the folders are walked by
 * path through Deno's API, each entered only after lstat found a folder.
 */
import { FrameType } from "../protocol/frame.ts";
import {
  encodeListing,
  FINGERPRINT_BYTES,
  type Fingerprinted,
  Fingerprinter,
  type List,
  LISTING_FRAME_FINGERPRINTS,
  LISTING_INCOMPLETE,
  LISTING_LAST,
  LISTING_MAX_FINGERPRINTS,
} from "../protocol/listing.ts";
import { MAX_PATH_DEPTH } from "../protocol/limits.ts";
import { AT_FDCWD } from "../native/libc.ts";
import {
  type Dirent,
  type Listed,
  loadNativeReader,
  type NativeReader,
} from "../native/native_read.ts";
import type { FrameWriter } from "../transport/frame_io.ts";
import { childPath, type Inbox, Refusal } from "./inbox.ts";

export interface ListingOptions {
  inbox: Inbox;
  writer: FrameWriter;
  /** SHA-256 in one go. */
  sha256: (data: Uint8Array) => Uint8Array;
  limits: { maxPathBytes: number; maxDepth: number };
  /** Throws once the session was closed from outside. */
  stopIfClosed(): void;
}

/** Sends the LISTING frames answering `list`; returns how many files and folders it listed. */
export async function sendListing(list: List, opts: ListingOptions): Promise<number> {
  const fingerprints = new Fingerprinter(opts.sha256, hexBytes(list.salt));
  const out = new ListingOut(opts);
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
      await walkRoot(root, fingerprints, opts, out);
    }
  } catch (err) {
    if (!(err instanceof Full)) throw err;
    await out.end(true);
    return out.count;
  }
  await out.end(false);
  return out.count;
}

/** Thrown when the listing reaches LISTING_MAX_FINGERPRINTS. */
class Full extends Error {}

/** The fingerprints so far, a frame's worth at a time. */
class ListingOut {
  readonly #buf = new Uint8Array(LISTING_FRAME_FINGERPRINTS * FINGERPRINT_BYTES);
  #at = 0;
  count = 0;

  constructor(readonly opts: ListingOptions) {}

  async add(fp: Uint8Array): Promise<void> {
    if (this.count >= LISTING_MAX_FINGERPRINTS) throw new Full();
    this.#buf.set(fp, this.#at);
    this.#at += FINGERPRINT_BYTES;
    this.count++;
    if (this.#at === this.#buf.length) await this.#send(0);
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

/** DIR/`root`, and everything in it when it is a folder. */
function walkRoot(
  root: string,
  fingerprints: Fingerprinter,
  opts: ListingOptions,
  out: ListingOut,
): Promise<void> {
  const native = loadNativeReader();
  return native?.lists
    ? walkNative(root, fingerprints, opts, out, native)
    : walkByPath(root, fingerprints, opts, out);
}

/**
 * Through the C library: each folder opened in the one above it with O_NOFOLLOW, listed with
 * getdents64, each entry's status by statx in that folder, never through a link.
 */
async function walkNative(
  root: string,
  fingerprints: Fingerprinter,
  opts: ListingOptions,
  out: ListingOut,
  native: NativeReader,
): Promise<void> {
  const rootPath = childPath(opts.inbox.root, root);
  let found: Listed;
  try {
    found = native.lstatAt(AT_FDCWD, rootPath, rootPath);
  } catch {
    return;
  }
  const top = fingerprinted(root, found);
  if (top === null) return;
  await out.add(fingerprints.of(top));
  if (top.kind !== "dir") return;
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
      const { name, isDirectory } = level.entries[level.next++]!;
      const rel = `${level.rel}/${name}`;
      let status: Listed;
      try {
        status = native.lstatAt(level.fd, name, rel);
      } catch {
        continue;
      }
      const entry = fingerprinted(rel, status);
      if (entry === null) continue;
      await out.add(fingerprints.of(entry));
      if (entry.kind === "dir" && isDirectory !== false) enter(level.fd, name, rel);
    }
  } finally {
    for (const level of stack) native.close(level.fd);
  }
}

function fingerprinted(path: string, status: Listed): Fingerprinted | null {
  if (status.kind === "file") {
    return { kind: "file", path, size: status.size, mtime: status.mtime };
  }
  if (status.kind === "dir") return { kind: "dir", path, mtime: status.mtime, mode: status.mode };
  return null;
}

/** Through Deno's API, by path: a folder is entered only after lstat found a folder there. */
async function walkByPath(
  root: string,
  fingerprints: Fingerprinter,
  opts: ListingOptions,
  out: ListingOut,
): Promise<void> {
  const top = status(childPath(opts.inbox.root, root), root);
  if (top === null) return;
  await out.add(fingerprints.of(top));
  if (top.kind !== "dir") return;
  // Depth first, a folder's listing open per level (at most MAX_PATH_DEPTH).
  const stack: { abs: string; rel: string; entries: Iterator<Deno.DirEntry> }[] = [];
  const enter = (abs: string, rel: string) => {
    if (stack.length >= MAX_PATH_DEPTH) return;
    try {
      stack.push({ abs, rel, entries: Deno.readDirSync(abs)[Symbol.iterator]() });
    } catch { /* unreadable, or gone: nothing listed in it */ }
  };
  enter(childPath(opts.inbox.root, root), root);
  try {
    while (stack.length > 0) {
      const top = stack.at(-1)!;
      let next: IteratorResult<Deno.DirEntry>;
      try {
        next = top.entries.next();
      } catch {
        next = { done: true, value: undefined };
      }
      if (next.done) {
        stack.pop();
        continue;
      }
      const { name, isFile, isDirectory } = next.value;
      if (!isFile && !isDirectory) continue; // a link or a special file: not listed, not entered
      const abs = childPath(top.abs, name);
      const rel = `${top.rel}/${name}`;
      const found = status(abs, rel);
      if (found === null) continue;
      await out.add(fingerprints.of(found));
      if (found.kind === "dir") enter(abs, rel);
    }
  } finally {
    for (const level of stack) level.entries.return?.();
  }
}

/** What a fingerprint is of, for a regular file or folder at `abs` (lstat); else null. */
function status(abs: string, rel: string): Fingerprinted | null {
  let info: Deno.FileInfo;
  try {
    info = Deno.lstatSync(abs);
  } catch {
    return null;
  }
  const mtime = info.mtime?.getTime();
  if (mtime === undefined) return null;
  if (info.isFile) return { kind: "file", path: rel, size: info.size, mtime };
  if (info.isDirectory) return { kind: "dir", path: rel, mtime, mode: info.mode ?? 0 };
  return null;
}

function hexBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
