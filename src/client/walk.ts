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
import { basename, dirname, join, resolve } from "node:path";
import type { Entry } from "../protocol/messages.ts";
import { FerryError } from "../errors.ts";

/** An entry to announce, and where its bytes come from. */
export interface LocalEntry extends Omit<Entry, "id"> {
  /** Absolute path of the local file or directory; null for standard input. */
  source: string | null;
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
  for (const part of STAGING_PARTS) {
    try {
      if ((await Deno.lstat(join(abs, part))).isDirectory) return true;
    } catch { /* not there */ }
  }
  return false;
}

/** Whether `abs` is a staging area or inside one. */
async function inStaging(abs: string): Promise<boolean> {
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

function modeOf(info: Deno.FileInfo, fallback: number): number {
  return info.mode === null ? fallback : info.mode & 0o7777;
}

function mtimeOf(info: Deno.FileInfo): number {
  return info.mtime?.getTime() ?? Date.now();
}

function fileEntry(path: string, source: string, info: Deno.FileInfo): LocalEntry {
  return {
    path,
    source,
    kind: "file",
    size: info.size,
    mtime: mtimeOf(info),
    mode: modeOf(info, 0o644),
  };
}

function dirEntry(path: string, source: string, info: Deno.FileInfo): LocalEntry {
  return { path, source, kind: "dir", size: null, mtime: mtimeOf(info), mode: modeOf(info, 0o755) };
}

function reasonOf(err: unknown): string {
  if (err instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (err instanceof Deno.errors.NotFound) return "vanished while being listed";
  return err instanceof Error ? err.message : String(err);
}

function skipReason(info: Deno.FileInfo): string {
  return info.isSymlink ? "symbolic link, not followed" : "not a regular file or directory";
}

export async function* walk(sources: Source[]): AsyncGenerator<WalkItem> {
  for (const source of sources) {
    const { info } = source;
    if (info === null) {
      yield {
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
      continue;
    }
    const abs = resolve(source.arg);
    if (source.exclude?.excludes(source.name, "", info.isDirectory)) continue;
    if ((info.isFile || info.isDirectory) && await inStaging(abs)) {
      yield { type: "skipped", path: source.arg, reason: "ferry's staging folder, never sent" };
    } else if (info.isFile) {
      yield { type: "entry", entry: fileEntry(source.name, abs, info) };
    } else if (info.isDirectory) {
      yield* walkDir(abs, source.name, info, source.exclude);
    } else {
      yield { type: "skipped", path: source.arg, reason: skipReason(info) };
    }
  }
}

interface Level {
  abs: string;
  rel: string;
  /** The path below the source's own folder ("" for the source). */
  within: string;
  info: Deno.FileInfo;
  entries: AsyncIterator<Deno.DirEntry>;
  failed: boolean;
}

async function* walkDir(
  abs: string,
  rel: string,
  info: Deno.FileInfo,
  exclude: Exclusion | undefined,
): AsyncGenerator<WalkItem> {
  const open = (abs: string, rel: string, within: string, info: Deno.FileInfo): Level => ({
    abs,
    rel,
    within,
    info,
    entries: Deno.readDir(abs)[Symbol.asyncIterator](),
    failed: false,
  });
  const stack: Level[] = [open(abs, rel, "", info)];
  for (let top = stack.at(-1); top !== undefined; top = stack.at(-1)) {
    let next: IteratorResult<Deno.DirEntry>;
    try {
      next = await top.entries.next();
    } catch (err) {
      yield { type: "error", path: top.rel, reason: `cannot list: ${reasonOf(err)}` };
      top.failed = true;
      next = { done: true, value: undefined };
    }
    if (next.done) {
      stack.pop();
      if (!top.failed) yield { type: "entry", entry: dirEntry(top.rel, top.abs, top.info) };
      continue;
    }
    const name = next.value.name;
    // A listed name has no "/" and top.abs is resolved: join()'s normalizing is not needed.
    const childAbs = top.abs.endsWith("/") ? top.abs + name : `${top.abs}/${name}`;
    const childRel = `${top.rel}/${name}`;
    const childWithin = top.within === "" ? name : `${top.within}/${name}`;
    if (exclude?.excludes(childRel, childWithin, next.value.isDirectory)) continue;
    let child: Deno.FileInfo;
    try {
      child = Deno.lstatSync(childAbs); // metadata only: cheaper in place than via the thread pool
    } catch (err) {
      yield { type: "error", path: childRel, reason: reasonOf(err) };
      continue;
    }
    if (child.isDirectory && name === STAGING_NAME && await isStaging(childAbs)) continue;
    if (child.isDirectory) stack.push(open(childAbs, childRel, childWithin, child));
    else if (child.isFile) yield { type: "entry", entry: fileEntry(childRel, childAbs, child) };
    else yield { type: "skipped", path: childRel, reason: skipReason(child) };
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
