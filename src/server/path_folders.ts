/**
 * A session's folders through Deno's API, by path: where the C library's
 * folder descriptors are not available (Windows, macOS, a C library ferry
 * may not load, tests that ask for it). See folders.ts.
 *
 * A path is resolved again by every call, through whatever links are in it
 * at that moment. So a file is placed only after every folder on its path
 * was checked again with lstat, right before, and its folder is checked to
 * be beneath DIR (realPath) right after: a folder replaced by a link
 * between the two is found then, and the file placed through it removed
 * again. What remains is a short window in which the file exists outside
 * DIR; beneath.ts has none.
 */
import { dirname, join, sep } from "node:path";
import {
  childPath,
  type ConflictPolicy,
  type Existing,
  type Inbox,
  isLinkUnsupported,
  kindOf,
  nameByPolicy,
  Refusal,
  replacedReason,
  STAGING_REPLACED,
  storageRefusal,
  syncDirs,
} from "./inbox.ts";
import type { FileReader, Folders, Looked } from "./folders.ts";

/** How many checked folders to remember before starting over. */
const FOLDER_CACHE_LIMIT = 4096;

export class PathFolders implements Folders {
  /** Folders checked by this session (a folder another session created is not durable before it syncs it). */
  #known = new Set<string>();
  #dirty = new Set<string>();

  constructor(readonly inbox: Inbox) {}

  /**
   * Its calls are metadata calls that never wait on file data, so they run
   * in place: a thread-pool hop costs more than the call
   * (docs/PERFORMANCE.md).
   */
  ensure(parts: string[], created?: Set<string>): Promise<string> {
    return settled(() => this.#ensure(parts, created));
  }

  #ensure(parts: string[], created?: Set<string>): string {
    const { inbox } = this;
    let path = inbox.root;
    /** Whether the folders above `path` were all looked at now rather than remembered. */
    let fresh = true;
    for (let i = 0; i < parts.length; i++) {
      const parent = path;
      path = childPath(path, parts[i]!);
      if (this.#known.has(path)) {
        fresh = false;
        continue;
      }
      // A folder remembered above may have been moved or replaced by a link since: mkdir would
      // follow that link (or fail in the moved folder's absence). Look again from DIR down.
      if (!fresh && this.#firstNotFolder(parent) !== null) {
        this.#known.clear();
        path = inbox.root;
        fresh = true;
        i = -1;
        continue;
      }
      const existing = inbox.existing(path);
      if (existing === "none") {
        try {
          Deno.mkdirSync(path);
          this.#dirty.add(parent);
          if (created && created.size < FOLDER_CACHE_LIMIT * 16) created.add(path);
        } catch (err) {
          if (!(err instanceof Deno.errors.AlreadyExists)) throw storageRefusal(err);
          if (inbox.existing(path) !== "dir") {
            throw new Refusal("a file or link is in the way of a directory");
          }
        }
        this.#verifyMade(path);
      } else if (existing === "other") {
        throw new Refusal("the path goes through a symbolic link or special file on the receiver");
      } else if (existing === "file") {
        throw new Refusal("a file is in the way of a directory");
      }
      if (this.#known.size >= FOLDER_CACHE_LIMIT) this.#known.clear();
      this.#known.add(path);
    }
    return path;
  }

  place(temp: string, dir: string, name: string, policy: ConflictPolicy): Promise<string | null> {
    return settled(() => this.#place(temp, dir, name, policy));
  }

  #place(temp: string, dir: string, name: string, policy: ConflictPolicy): string | null {
    this.#recheck(dir);
    const staged = Deno.lstatSync(temp);
    const { placing } = this.inbox;
    let linked = false;
    const placed = nameByPolicy(
      name,
      policy,
      (candidate) => {
        const result = linkNoReplace(temp, join(dir, candidate), placing);
        linked = result === "linked";
        return result !== "exists";
      },
      (name) => {
        const target = join(dir, name);
        if (this.inbox.existing(target) === "dir") throw new Refusal("a directory is in the way");
        try {
          Deno.renameSync(temp, target);
        } catch (err) {
          throw storageRefusal(err);
        }
      },
    );
    if (placed === null) return null;
    this.#verifyPlaced(dir, placed, staged);
    // A metadata call that never waits on data: done in place, cheaper than a thread-pool hop.
    if (linked) Deno.removeSync(temp);
    this.#dirty.add(dir);
    return placed;
  }

  look(dir: string, name: string): Promise<Looked | null> {
    return settled(() => {
      this.#recheck(dir);
      const info = this.inbox.lookup(join(dir, name));
      if (info === null) return null;
      return { kind: kindOf(info), size: info.size, mtimeMs: info.mtime?.getTime() ?? NaN };
    });
  }

  async openFile(dir: string, name: string): Promise<FileReader | null> {
    this.#recheck(dir);
    const path = join(dir, name);
    let file: Deno.FsFile;
    let seen: Deno.FileInfo;
    try {
      seen = Deno.lstatSync(path);
      if (!seen.isFile) return null;
      file = await Deno.open(path, { read: true });
    } catch {
      return null;
    }
    try {
      // What opened must be the regular file lstat saw, in a folder still beneath DIR.
      const info = await file.stat();
      const real = Deno.realPathSync(dir);
      const { root } = this.inbox;
      if (
        info.isFile && info.ino === seen.ino && info.dev === seen.dev &&
        (real === root || real.startsWith(root.endsWith(sep) ? root : root + sep))
      ) {
        return file;
      }
    } catch { /* not the file it was */ }
    file.close();
    return null;
  }

  checkStaged(path: string, info: Deno.FileInfo): void {
    const { root } = this.inbox;
    const folder = dirname(path);
    let found: Deno.FileInfo | null = null;
    try {
      if (this.#firstNotFolder(folder) === null && Deno.realPathSync(folder) === folder) {
        found = Deno.lstatSync(path);
      }
    } catch { /* not there by its path */ }
    if (
      found === null || !found.isFile || found.ino !== info.ino || found.dev !== info.dev ||
      !folder.startsWith(root)
    ) {
      throw new Refusal(STAGING_REPLACED);
    }
  }

  setMetadata(dir: string, mode: number | null, mtimeMs: number): Promise<void> {
    return settled(() => this.#setMetadata(dir, mode, mtimeMs));
  }

  #setMetadata(dir: string, mode: number | null, mtimeMs: number): void {
    // Metadata calls, in place (see ensure). Deno's calls follow a link, so the folder is
    // checked right before; a link swapped in between could still redirect them.
    this.#recheck(dir);
    if (mode !== null && Deno.build.os !== "windows") Deno.chmodSync(dir, mode);
    const mtime = new Date(mtimeMs);
    Deno.utimeSync(dir, mtime, mtime);
    this.#dirty.add(dir);
  }

  get dirty(): number {
    return this.#dirty.size;
  }

  async sync(): Promise<void> {
    if (this.#dirty.size === 0) return;
    await syncDirs(this.#dirty, this.inbox.fsyncPace);
    this.#dirty.clear();
  }

  close(): void {}

  /** Checks, without following links, that every folder from DIR down to `dir` is a folder. */
  #recheck(dir: string): void {
    const found = this.#firstNotFolder(dir);
    if (found === null) return;
    this.#known.clear();
    throw new Refusal(replacedReason(found));
  }

  /** The first thing on the way from DIR down to `dir` that is not a folder (lstat), or null. */
  #firstNotFolder(dir: string): "link" | "file" | "none" | null {
    const { root } = this.inbox;
    if (dir === root) return null;
    const rest = dir.slice(root.endsWith(sep) ? root.length : root.length + 1);
    let path = root;
    for (const part of rest.split(sep)) {
      path = join(path, part);
      let found: Existing;
      try {
        found = this.inbox.existing(path);
      } catch {
        return "file"; // a file on the way (ENOTDIR), or unreadable
      }
      if (found !== "dir") return found === "other" ? "link" : found;
    }
    return null;
  }

  /**
   * Checks that the folder just made at `path` is beneath DIR: a folder above
   * it swapped for a link between the check and mkdir would have made it
   * elsewhere. It is removed again from there (if empty) and refused.
   */
  #verifyMade(path: string): void {
    let real: string | null = null;
    try {
      real = Deno.realPathSync(path);
    } catch { /* gone */ }
    const { root } = this.inbox;
    if (real !== null && real.startsWith(root.endsWith(sep) ? root : root + sep)) return;
    this.#known.clear();
    if (real !== null) {
      try {
        Deno.removeSync(real); // an empty folder only: never what another put in it
      } catch { /* not empty, or gone */ }
    }
    throw new Refusal(replacedReason(this.#firstNotFolder(dirname(path)) ?? "none"));
  }

  /**
   * Checks that the folder `placed` went into is beneath DIR now. If it is
   * not, a link was swapped in after the check: the file is removed from
   * where it landed, if it is still ours there, and refused.
   */
  #verifyPlaced(dir: string, placed: string, staged: Deno.FileInfo): void {
    const { root } = this.inbox;
    let real: string | null = null;
    try {
      real = Deno.realPathSync(dir);
    } catch { /* gone: not beneath DIR */ }
    if (
      real !== null && (real === root || real.startsWith(root.endsWith(sep) ? root : root + sep))
    ) {
      return;
    }
    this.#known.clear();
    let removed = false;
    try {
      const landed = Deno.realPathSync(join(dir, placed));
      const info = Deno.lstatSync(landed);
      if (info.isFile && info.ino === staged.ino && info.dev === staged.dev) {
        Deno.removeSync(landed);
        removed = true;
      }
    } catch { /* not found where the path leads now */ }
    // A folder on the way is a link now, or one was moved (and a link put back since).
    const reason = replacedReason(this.#firstNotFolder(dir) ?? "dir");
    throw new Refusal(removed ? `${reason} (removed again from where it landed)` : reason);
  }
}

/**
 * Creates `target` as a new name for `temp`, failing if `target` exists:
 * atomic, never replaces: "linked" (`temp` is still there), or "exists".
 * Where hard links are unsupported (FAT, some network shares) it falls back
 * to check-then-rename ("moved"), serialized per target within this process
 * through `placing` (another process writing the same name at the same
 * instant could still be replaced there).
 */
function linkNoReplace(
  temp: string,
  target: string,
  placing: Set<string>,
): "linked" | "moved" | "exists" {
  // Metadata calls that never wait on data: done in place, cheaper than a thread-pool hop.
  try {
    Deno.linkSync(temp, target);
    return "linked";
  } catch (err) {
    if (err instanceof Deno.errors.AlreadyExists) return "exists";
    if (!isLinkUnsupported(err)) throw storageRefusal(err);
  }
  if (placing.has(target)) return "exists";
  placing.add(target);
  try {
    try {
      Deno.lstatSync(target);
      return "exists";
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw storageRefusal(err);
    }
    try {
      Deno.renameSync(temp, target);
    } catch (err) {
      throw storageRefusal(err);
    }
  } finally {
    placing.delete(target);
  }
  return "moved";
}

/** What `fn` returns or throws, as a promise (the calls run in place; see ensure). */
function settled<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(err);
  }
}
