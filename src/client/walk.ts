/**
 * Walks the sources named on the command line into entries to announce.
 *
 * Directories are walked depth first and streamed: memory grows with the
 * depth of a tree, never with its size. A directory is yielded after its
 * contents, so the receiver can set its mtime last. Symbolic links are never
 * followed; they are reported as skipped.
 *
 * What `--exclude` names is left out silently, and so is a receiving
 * folder's staging area (a `.ferry` folder holding `tmp` or `partial`):
 * it is never sent, never listed.
 */
import { pathCalls } from "./source_path.ts";
import type { Entry } from "../protocol/messages.ts";
import { FerryError } from "../errors.ts";
import {
  type Dirent,
  type Listed,
  loadNativeReader,
  type NativeReader,
} from "../native/native_read.ts";

/** An entry to announce, and where its bytes come from. */
export interface LocalEntry extends Omit<Entry, "id"> {
  /** Absolute path of the local file or directory; null for standard input or a text. */
  source: string | null;
  /** A text's bytes (kind "text", PROTOCOL.md §5.15). */
  text?: Uint8Array;
}

export type WalkItem =
  | { type: "entry"; entry: LocalEntry }
  /** Not sent, by design (a link, a special file): reported, not a failure. */
  | { type: "skipped"; path: string; reason: string }
  /** Could not be read (permissions, vanished): reported as a failure. */
  | { type: "error"; path: string; reason: string };

export const STDIN_SOURCE = "-";

/** What `send --exclude` leaves out (src/cli/glob.ts's Excluder). */
export interface Exclusion {
  /** Whether the entry at `path` (`within` its source; a folder if `isDir`) is left out. */
  excludes(path: string, within: string, isDir: boolean): boolean;
}

export interface Source {
  /** As given on the command line. */
  arg: string;
  /** The name it gets on the receiver (top level). */
  name: string;
  info: Deno.FileInfo | null;
  /** What to leave out (`send --exclude`). */
  exclude?: Exclusion | undefined;
}

/** The name of a receiving folder's staging area (as src/server/safe_path.ts names it). */
export const STAGING_NAME = ".ferry";
const STAGING_PARTS = ["tmp", "partial"];

/** Whether `abs`, a folder named `.ferry`, is ferry's staging area: it holds `tmp` or `partial`. */
async function isStaging(abs: string): Promise<boolean> {
  const { join } = await pathCalls();
  for (const part of STAGING_PARTS) {
    try {
      if ((await Deno.lstat(join(abs, part))).isDirectory) return true;
    } catch { /* not there */ }
  }
  return false;
}

/** Whether `abs` is a staging area or inside one. */
async function inStaging(abs: string): Promise<boolean> {
  const { basename, dirname } = await pathCalls();
  for (let dir = abs;; dir = dirname(dir)) {
    if (basename(dir) === STAGING_NAME && await isStaging(dir)) return true;
    if (dirname(dir) === dir) return false;
  }
}

/**
 * Checks the command line's sources before anything is sent: each exists,
 * and has a name to give it on the receiver.
 */
export async function resolveSources(
  args: string[],
  stdinName: string,
  exclude?: Exclusion,
): Promise<Source[]> {
  const sources: Source[] = [];
  const { basename, resolve } = await pathCalls();
  for (const arg of args) {
    if (arg === STDIN_SOURCE) {
      sources.push({ arg, name: stdinName, info: null, exclude });
      continue;
    }
    let info: Deno.FileInfo;
    // Errors name the absolute path tried, so a path taken from the wrong folder shows which.
    const tried = resolve(arg);
    try {
      info = await Deno.lstat(arg);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        throw new FerryError("io", `${tried}: no such file or directory`);
      }
      if (err instanceof Deno.errors.PermissionDenied) {
        throw new FerryError("io", `${tried}: permission denied`);
      }
      if (err instanceof Deno.errors.NotCapable) {
        throw new FerryError("io", `${tried}: ${NOT_CAPABLE}`, { hint: NOT_CAPABLE_HINT });
      }
      throw err;
    }
    const name = basename(tried);
    if (name === "") {
      throw new FerryError(
        "failed",
        `${tried}: cannot send a file system root; name a folder in it`,
      );
    }
    sources.push({ arg, name, info, exclude });
  }
  return sources;
}

/** What the walk reads of an entry's status (lstat: a link is itself). */
interface Status {
  kind: Listed["kind"];
  size: number;
  /** Milliseconds since the epoch; null where the system does not say. */
  mtime: number | null;
  /** Permission bits; null where the system has none (Windows). */
  mode: number | null;
}

function statusOf(info: Deno.FileInfo): Status {
  return {
    kind: info.isFile ? "file" : info.isDirectory ? "dir" : info.isSymlink ? "link" : "other",
    size: info.size,
    mtime: info.mtime?.getTime() ?? null,
    mode: info.mode,
  };
}

function modeOf(info: Status, fallback: number): number {
  return info.mode === null ? fallback : info.mode & 0o7777;
}

function mtimeOf(info: Status): number {
  return info.mtime ?? Date.now();
}

function fileEntry(path: string, source: string, info: Status): LocalEntry {
  return {
    path,
    source,
    kind: "file",
    size: info.size,
    mtime: mtimeOf(info),
    mode: modeOf(info, 0o644),
  };
}

function dirEntry(path: string, source: string, info: Status): LocalEntry {
  return { path, source, kind: "dir", size: null, mtime: mtimeOf(info), mode: modeOf(info, 0o755) };
}

/**
 * Deno refuses some paths to any program without full access (devices,
 * /dev/shm, /proc): ferry's permission set cannot grant them, so they are a
 * place ferry cannot read, not a bug.
 */
const NOT_CAPABLE = "ferry's permissions do not reach it (system and device paths such as /dev, " +
  "/proc and /sys are off limits)";
const NOT_CAPABLE_HINT =
  "copy it to an ordinary folder first, or pipe it: 'cat FILE | ferry send -'";

function reasonOf(err: unknown): string {
  if (err instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (err instanceof Deno.errors.NotCapable) return NOT_CAPABLE;
  if (err instanceof Deno.errors.NotFound) return "vanished while being listed";
  return err instanceof Error ? err.message : String(err);
}

function skipReason(info: Status): string {
  return info.kind === "link" ? "symbolic link, not followed" : "not a regular file or directory";
}

/** What a walk gives: its items, and (`pull`) each in place where nothing has to wait. */
export interface WalkItems extends AsyncIterator<WalkItem> {
  /** The next item, or null at the end: a promise only where the walk has to wait. */
  pull?(): WalkItem | null | Promise<WalkItem | null>;
}

/** Walks `sources` (see the top of this file). */
export function walk(sources: Source[]): Walker {
  return new Walker(sources);
}

/**
 * One folder's listing: its entries, and each one's status. Through the C
 * library where it can list (native_read.ts: the names a read at a time,
 * and each status relative to the open folder), else Deno's API.
 */
interface Listing {
  /** The next entry, null at the end. */
  next(): Promise<Dirent | null>;
  /** `next`, without a promise, where the listing never waits (the C library's). */
  nextSync: (() => Dirent | null) | null;
  /** The status of entry `name`, at `abs`. */
  lstat(name: string, abs: string): Status;
  close(): void;
}

function denoListing(abs: string): Listing {
  const entries = Deno.readDir(abs)[Symbol.asyncIterator]();
  return {
    async next() {
      const next = await entries.next();
      return next.done ? null : next.value;
    },
    nextSync: null,
    // Metadata only: cheaper in place than via the thread pool.
    lstat: (_name, abs) => statusOf(Deno.lstatSync(abs)),
    close() {
      entries.return?.();
    },
  };
}

function nativeListing(native: NativeReader, abs: string): Listing {
  let fd: number | null = null;
  let failed: unknown = null;
  try {
    fd = native.openFolder(abs);
  } catch (err) {
    failed = err; // thrown by the first next(), as Deno's readDir does
  }
  let batch: Dirent[] = [];
  let at = 0;
  const nextSync = (): Dirent | null => {
    if (failed !== null) throw failed;
    if (at === batch.length) {
      batch = native.list(fd!);
      at = 0;
      if (batch.length === 0) return null;
    }
    return batch[at++]!;
  };
  return {
    next() {
      try {
        return Promise.resolve(nextSync());
      } catch (err) {
        return Promise.reject(err);
      }
    },
    nextSync,
    // A Listed is a Status (one object per entry, no copy).
    lstat: (name, abs) => native.lstatAt(fd!, name, abs),
    close() {
      if (fd === null) return;
      try {
        native.close(fd);
      } catch { /* read-only: nothing to lose */ }
      fd = null;
    },
  };
}

interface Level {
  abs: string;
  rel: string;
  /**
   * `abs` and `rel` each with a "/" after it: an entry's paths are one concatenation each (one
   * string object, where a template literal makes two), thousands of times in a row.
   */
  absSlash: string;
  relSlash: string;
  /** The path below the source's own folder ("" for the source; only `--exclude` reads it). */
  within: string;
  info: Status;
  entries: Listing;
}

/** What a step of the walk gives: an item, or nothing yet (undefined: step again). */
type Step = WalkItem | undefined;

/**
 * The walk, a step at a time: each folder's entries are taken in place
 * where its listing never waits (the C library's), so an entry costs no
 * promise; a promise only where something has to wait (Deno's listing, the
 * check for a staging folder).
 */
export class Walker implements WalkItems, AsyncIterableIterator<WalkItem> {
  readonly #sources: Source[];
  #next = 0;
  /** The folders being listed, the innermost last. */
  #stack: Level[] = [];
  #exclude: Exclusion | undefined;
  readonly #native = loadNativeReader();

  constructor(sources: Source[]) {
    this.#sources = sources;
  }

  pull(): WalkItem | null | Promise<WalkItem | null> {
    for (;;) {
      const top = this.#stack.at(-1);
      let step: Step | Promise<Step>;
      if (top !== undefined) step = this.#step(top);
      else if (this.#next < this.#sources.length) step = this.#start(this.#sources[this.#next++]!);
      else return null;
      if (step instanceof Promise) return step.then((item) => item ?? this.pull());
      if (step !== undefined) return step;
    }
  }

  async next(): Promise<IteratorResult<WalkItem>> {
    const item = await this.pull();
    return item === null ? { done: true, value: undefined } : { done: false, value: item };
  }

  /** Stops the walk: closes the folders it has open. */
  return(): Promise<IteratorResult<WalkItem>> {
    for (const level of this.#stack) level.entries.close();
    this.#stack = [];
    this.#next = this.#sources.length;
    return Promise.resolve({ done: true, value: undefined });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  #start(source: Source): Step | Promise<Step> {
    const { info } = source;
    if (info === null) {
      return {
        type: "entry",
        entry: {
          path: source.name,
          source: null,
          kind: "file",
          size: null,
          mtime: Date.now(),
          mode: 0o644,
        },
      };
    }
    if (source.exclude?.excludes(source.name, "", info.isDirectory)) return undefined;
    if (!info.isFile && !info.isDirectory) {
      return { type: "skipped", path: source.arg, reason: skipReason(statusOf(info)) };
    }
    return this.#startChecked(source, info);
  }

  async #startChecked(source: Source, info: Deno.FileInfo): Promise<Step> {
    const abs = (await pathCalls()).resolve(source.arg);
    if (await inStaging(abs)) {
      return { type: "skipped", path: source.arg, reason: "ferry's staging folder, never sent" };
    }
    const status = statusOf(info);
    if (info.isFile) return { type: "entry", entry: fileEntry(source.name, abs, status) };
    this.#exclude = source.exclude;
    this.#stack.push(this.#open(abs, source.name, "", status));
    return undefined;
  }

  #open(abs: string, rel: string, within: string, info: Status): Level {
    const native = this.#native;
    const entries = native?.lists ? nativeListing(native, abs) : denoListing(abs);
    const absSlash = abs.endsWith("/") ? abs : `${abs}/`;
    return { abs, rel, absSlash, relSlash: `${rel}/`, within, info, entries };
  }

  /** Takes the next entry of the innermost folder. */
  #step(top: Level): Step | Promise<Step> {
    const { entries } = top;
    if (entries.nextSync === null) {
      return entries.next().then((next) => this.#visit(top, next), (err) => this.#failed(top, err));
    }
    let next: Dirent | null;
    try {
      next = entries.nextSync();
    } catch (err) {
      return this.#failed(top, err);
    }
    return this.#visit(top, next);
  }

  /** `top` could not be listed: its error, and it is left unannounced (not read whole). */
  #failed(top: Level, err: unknown): Step {
    this.#stack.pop();
    top.entries.close();
    return { type: "error", path: top.rel, reason: `cannot list: ${reasonOf(err)}` };
  }

  /** Entry `next` of folder `top` (null: its end, when the folder itself is announced). */
  #visit(top: Level, next: Dirent | null): Step | Promise<Step> {
    if (next === null) {
      this.#stack.pop();
      top.entries.close();
      return { type: "entry", entry: dirEntry(top.rel, top.abs, top.info) };
    }
    const name = next.name;
    if (next.utf8 === false) {
      return { type: "error", path: `${top.rel}/${name}`, reason: "its name is not valid UTF-8" };
    }
    const exclude = this.#exclude;
    // A listed name has no "/" and top.abs is resolved: join()'s normalizing is not needed.
    const childAbs = top.absSlash + name;
    const childRel = top.relSlash + name;
    const childWithin = exclude === undefined
      ? ""
      : top.within === ""
      ? name
      : `${top.within}/${name}`;
    let child: Status | null = null;
    try {
      // Where the listing does not say whether it is a folder, the status does.
      if (next.isDirectory === null) child = top.entries.lstat(name, childAbs);
      if (exclude?.excludes(childRel, childWithin, next.isDirectory ?? child!.kind === "dir")) {
        return undefined;
      }
      child ??= top.entries.lstat(name, childAbs);
    } catch (err) {
      return { type: "error", path: childRel, reason: reasonOf(err) };
    }
    if (child.kind === "dir") {
      if (name === STAGING_NAME) {
        return this.#enterUnlessStaging(childAbs, childRel, childWithin, child);
      }
      this.#stack.push(this.#open(childAbs, childRel, childWithin, child));
      return undefined;
    }
    if (child.kind === "file") {
      return { type: "entry", entry: fileEntry(childRel, childAbs, child) };
    }
    return { type: "skipped", path: childRel, reason: skipReason(child) };
  }

  /** A folder named `.ferry`: walked into unless it is a staging area (then left out silently). */
  async #enterUnlessStaging(abs: string, rel: string, within: string, info: Status): Promise<Step> {
    if (!(await isStaging(abs))) this.#stack.push(this.#open(abs, rel, within, info));
    return undefined;
  }
}

/** What a walk of `sources` will announce: files and their total size (null: standard input). */
export interface Totals {
  files: number;
  bytes: number | null;
}

/**
 * Counts the files the sources hold, and their bytes, walking them the same
 * way as `walk` but keeping only two numbers (memory stays bounded). Stops
 * early, returning null, once `signal` is aborted.
 */
export async function countSources(
  sources: Source[],
  signal?: AbortSignal,
): Promise<Totals | null> {
  let files = 0;
  let bytes: number | null = 0;
  for await (const item of walk(sources)) {
    if (signal?.aborted) return null;
    if (item.type !== "entry" || item.entry.kind !== "file") continue;
    files++;
    bytes = bytes === null || item.entry.size === null ? null : bytes + item.entry.size;
  }
  return { files, bytes };
}
