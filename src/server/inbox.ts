/**
 * The receiving directory and its storage rules:
 *
 * - every name is checked by `checkName` before it touches the disk;
 * - directories are created one component at a time, and a symbolic link
 *   found on the way is refused, never followed;
 * - data is staged in DIR/.ferry/tmp and reaches its final name only by an
 *   atomic link (no replacing) or, for `--on-conflict overwrite`, rename;
 * - directories whose entries changed are fsynced before anything in them
 *   is acknowledged.
 */
import { join } from "node:path";
import { checkName, STAGING_DIR_NAME } from "./safe_path.ts";
import { FerryError } from "../cli/errors.ts";

export type ConflictPolicy = "rename" | "overwrite" | "skip" | "fail";
export const CONFLICT_POLICIES: readonly ConflictPolicy[] = ["rename", "overwrite", "skip", "fail"];

/** A per-entry refusal: the entry is not stored, the session goes on. */
export class Refusal extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = "Refusal";
  }
}

const IS_WINDOWS = Deno.build.os === "windows";
/** How many verified directories to remember before starting over. */
const DIR_CACHE_LIMIT = 4096;
/** How many `name (N).ext` variants to try before giving up. */
const MAX_RENAME_TRIES = 9999;

export type Existing = "none" | "file" | "dir" | "other";

export class Inbox {
  /** Directories known to exist as real directories (not links) under root. */
  #dirs = new Set<string>();

  private constructor(readonly root: string, readonly staging: string) {}

  /** Opens DIR for receiving: creates it and the staging folder, and checks it is writable. */
  static async open(dir: string): Promise<Inbox> {
    try {
      await Deno.mkdir(dir, { recursive: true });
      const root = await Deno.realPath(dir);
      const info = await Deno.stat(root);
      if (!info.isDirectory) throw new FerryError(`${dir} is not a directory`);
      const hidden = join(root, STAGING_DIR_NAME);
      await mkdirIfMissing(hidden);
      if (!(await Deno.lstat(hidden)).isDirectory) {
        throw new FerryError(`${hidden} must be a directory (ferry's staging folder)`);
      }
      const staging = join(hidden, "tmp");
      await mkdirIfMissing(staging);
      if (!(await Deno.lstat(staging)).isDirectory) {
        throw new FerryError(`${staging} must be a directory (ferry's staging folder)`);
      }
      const probe = join(staging, `probe-${crypto.randomUUID()}`);
      await Deno.writeFile(probe, new Uint8Array(0), { createNew: true });
      await Deno.remove(probe);
      return new Inbox(root, staging);
    } catch (err) {
      if (err instanceof FerryError) throw err;
      if (err instanceof Deno.errors.PermissionDenied || err instanceof Deno.errors.NotCapable) {
        throw new FerryError(`cannot write to ${dir}: permission denied`);
      }
      if (err instanceof Error && /read-only/i.test(err.message)) {
        throw new FerryError(`cannot write to ${dir}: read-only file system`);
      }
      if (err instanceof Deno.errors.NotADirectory || err instanceof Deno.errors.AlreadyExists) {
        throw new FerryError(`${dir} is not a directory`);
      }
      throw err;
    }
  }

  /** Checks a wire name; returns its components or throws a Refusal. */
  parse(name: string): string[] {
    const check = checkName(name, { windows: IS_WINDOWS });
    if (!check.ok) throw new Refusal(check.reason);
    return check.parts;
  }

  /** The absolute path of checked components. */
  pathOf(parts: string[]): string {
    return join(this.root, ...parts);
  }

  /**
   * Makes sure `parts` exists as a directory under root, creating what is
   * missing, one component at a time, refusing links and files in the way.
   * Adds the parent of each directory it creates to `dirty`.
   */
  async ensureDir(parts: string[], dirty: Set<string>): Promise<string> {
    let path = this.root;
    for (const part of parts) {
      const parent = path;
      path = join(path, part);
      if (this.#dirs.has(path)) continue;
      const existing = await this.existing(path);
      if (existing === "none") {
        try {
          await Deno.mkdir(path);
          dirty.add(parent);
        } catch (err) {
          if (!(err instanceof Deno.errors.AlreadyExists)) throw storageRefusal(err);
          if ((await this.existing(path)) !== "dir") {
            throw new Refusal("a file or link is in the way of a directory");
          }
        }
      } else if (existing === "other") {
        throw new Refusal("the path goes through a symbolic link or special file on the receiver");
      } else if (existing === "file") {
        throw new Refusal("a file is in the way of a directory");
      }
      if (this.#dirs.size >= DIR_CACHE_LIMIT) this.#dirs.clear();
      this.#dirs.add(path);
    }
    return path;
  }

  /** What is at `path`, without following a link. */
  async existing(path: string): Promise<Existing> {
    try {
      const info = await Deno.lstat(path);
      return info.isDirectory ? "dir" : info.isFile ? "file" : "other";
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return "none";
      throw storageRefusal(err);
    }
  }

  /** A new, empty, private temporary file in the staging folder. */
  async createTemp(): Promise<{ path: string; file: Deno.FsFile }> {
    const path = join(this.staging, `${crypto.randomUUID()}.part`);
    const file = await Deno.open(path, { write: true, createNew: true, mode: 0o600 });
    return { path, file };
  }

  /**
   * Gives a verified, synced temp file its final name in `dir` (absolute,
   * from `ensureDir`) according to `policy`. Returns the name used, or null
   * when it was skipped because the name is taken. Adds `dir` to `dirty`.
   */
  async place(
    temp: string,
    dir: string,
    name: string,
    policy: ConflictPolicy,
    dirty: Set<string>,
  ): Promise<string | null> {
    const target = join(dir, name);
    if (policy === "overwrite") {
      if ((await this.existing(target)) === "dir") {
        throw new Refusal("a directory is in the way");
      }
      await Deno.rename(temp, target).catch((err) => {
        throw storageRefusal(err);
      });
      dirty.add(dir);
      return name;
    }
    const tries = policy === "rename" ? MAX_RENAME_TRIES : 0;
    for (let n = 0; n <= tries; n++) {
      const candidate = n === 0 ? name : numberedName(name, n);
      if (await linkNoReplace(temp, join(dir, candidate))) {
        await Deno.remove(temp);
        dirty.add(dir);
        return candidate;
      }
    }
    if (policy === "skip") return null;
    if (policy === "fail") throw new Refusal("already exists on the receiver");
    throw new Refusal("no free name: too many copies already exist");
  }
}

/** `report.pdf` → `report (2).pdf`; `.bashrc` → `.bashrc (2)`; `a.tar.gz` → `a.tar (2).gz`. */
export function numberedName(name: string, n: number): string {
  const dot = name.lastIndexOf(".");
  if (dot <= 0) return `${name} (${n})`;
  return `${name.slice(0, dot)} (${n})${name.slice(dot)}`;
}

/**
 * Creates `target` as a new name for `temp`, failing if `target` exists:
 * atomic, never replaces. Where hard links are unsupported (FAT, some
 * network shares) it falls back to a checked rename.
 */
async function linkNoReplace(temp: string, target: string): Promise<boolean> {
  try {
    await Deno.link(temp, target);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.AlreadyExists) return false;
    if (!isLinkUnsupported(err)) throw storageRefusal(err);
  }
  try {
    await Deno.lstat(target);
    return false;
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw storageRefusal(err);
  }
  await Deno.rename(temp, target).catch((err) => {
    throw storageRefusal(err);
  });
  // The fallback moved the file; make the caller's remove() a no-op.
  await Deno.link(target, temp).catch(() => Deno.writeFile(temp, new Uint8Array(0)));
  return true;
}

function isLinkUnsupported(err: unknown): boolean {
  return err instanceof Deno.errors.PermissionDenied && !(err instanceof Deno.errors.NotCapable) ||
    (err instanceof Error && /not supported|operation not permitted/i.test(err.message));
}

async function mkdirIfMissing(path: string): Promise<void> {
  try {
    await Deno.mkdir(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
  }
}

/** Turns a storage error into a per-entry refusal with a plain reason. */
export function storageRefusal(err: unknown): Error {
  if (err instanceof Refusal) return err;
  if (err instanceof Deno.errors.PermissionDenied) {
    return new Refusal("permission denied on the receiver");
  }
  if (err instanceof Deno.errors.NotADirectory) {
    return new Refusal("a file is in the way of a directory");
  }
  if (err instanceof Deno.errors.IsADirectory) return new Refusal("a directory is in the way");
  if (err instanceof Error && /no space left|ENOSPC|os error 28/i.test(err.message)) {
    return new Refusal("the receiver's disk is full");
  }
  if (err instanceof Error && /read-only/i.test(err.message)) {
    return new Refusal("the receiver's file system is read-only");
  }
  if (err instanceof Error && /name too long|os error 36/i.test(err.message)) {
    return new Refusal("name too long for the receiver's file system");
  }
  return err instanceof Error ? err : new Error(String(err));
}

/** Fsyncs each directory, so the names just created in them are durable. */
export async function syncDirs(dirs: Iterable<string>): Promise<void> {
  if (IS_WINDOWS) return; // directories cannot be opened for fsync there
  for (const dir of dirs) {
    const handle = await Deno.open(dir, { read: true });
    try {
      await handle.sync();
    } finally {
      handle.close();
    }
  }
}
