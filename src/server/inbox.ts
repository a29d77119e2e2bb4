/**
 * The receiving directory and its storage rules:
 *
 * - every name is checked by `checkName` before it touches the disk;
 * - folders are created one component at a time, and a symbolic link found
 *   on the way is refused, never followed: through folder descriptors on
 *   Linux (beneath.ts), by path with checks before and after elsewhere
 *   (path_folders.ts); folders.ts is what a session sees of either;
 * - data is staged in DIR/.ferry/tmp and reaches its final name only by an
 *   atomic rename that never replaces (renameat2 on Linux; elsewhere, or on
 *   a file system without it, a link then an unlink) or, for
 *   `--on-conflict overwrite` and `update`, a plain rename (`nameByPolicy`),
 *   which replaces a file or a link at the name, never following it;
 * - directories whose entries changed are fsynced before anything in them
 *   is acknowledged.
 */
import { createHash } from "node:crypto";
import { type Digest, type Hasher, PrefixHash } from "../protocol/digests.ts";
import { statfs } from "node:fs/promises";
import { join, resolve, sep } from "node:path";
import { FsyncPace, fsyncPaced, settleSyncs } from "./fsync_pace.ts";
import { loadNativeFs, type NativeFs } from "./native_fs.ts";
import { checkName, STAGING_DIR_NAME } from "./safe_path.ts";
import { FerryError } from "../errors.ts";
import { osCode, osErrno } from "../os_errors.ts";
import type { Entry } from "../protocol/messages.ts";

export type ConflictPolicy = "rename" | "overwrite" | "skip" | "fail" | "update";
export const CONFLICT_POLICIES: readonly ConflictPolicy[] = [
  "rename",
  "overwrite",
  "skip",
  "fail",
  "update",
];

/**
 * Whether `policy` replaces the file at a name (by an atomic rename, once the new one is
 * verified and durable): `overwrite` always, `update` when the planner found it changed.
 */
export function replaces(policy: ConflictPolicy): boolean {
  return policy === "overwrite" || policy === "update";
}

/** A per-entry refusal: the entry is not stored, the session goes on. */
export class Refusal extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = "Refusal";
  }
}

/** Why a folder on a file's path is not the one that was checked: a Refusal's reason. */
export function replacedReason(found: "link" | "file" | "other" | "dir" | "none"): string {
  switch (found) {
    case "link":
      return "a folder on its path was replaced by a symbolic link";
    case "none":
      return "a folder on its path was moved or removed";
    case "dir":
      return "a folder on its path was replaced or moved";
    default:
      return "a folder on its path was replaced by a file";
  }
}

/** Why a staging file that did not open in ferry's staging folder (a link swapped in) is refused. */
export const STAGING_REPLACED = "ferry's staging folder in DIR was replaced or moved";

const IS_WINDOWS = Deno.build.os === "windows";
/** How many `name (N).ext` variants to try before giving up. */
export const MAX_RENAME_TRIES = 9999;

export type Existing = "none" | "file" | "dir" | "other";

/** When a transfer this session resumes first started (`Inbox.beginTransfer`). */
export interface TransferStart {
  /** By this machine's clock, in milliseconds. */
  since: number;
  /**
   * By the receiving file system's clock: its marker's birth time (ms), or
   * null where the file system keeps none.
   */
  born: number | null;
}

/** What the receiver holds of a file from an interrupted transfer. */
export interface HeldPartial {
  key: string;
  path: string;
  /** Bytes held. */
  size: number;
}

/**
 * The most one write() to a staging file on disk takes. A larger write lets
 * the kernel fill the page cache with large folios, and on a VM whose memory
 * balloon hands freed memory back to the host each of their pages then
 * faults on the host when first touched, which made large writes several
 * times slower in kernel time (docs/PERFORMANCE.md). On tmpfs (small pages)
 * there is nothing to gain, and each extra asynchronous write costs a
 * thread-pool hop, so there the whole chunk goes in one write
 * (`Inbox.writePiece`).
 */
export const WRITE_PIECE_BYTES = 512 * 1024;

/** Staging temp files older than this at start-up are left from a crash: removed. */
const STALE_TEMP_MS = 10 * 60 * 1000;
/** Kept free on the receiving file system beyond what accepted files need. */
const FREE_SPACE_MARGIN = 16 * 1024 * 1024;

export class Inbox {
  /**
   * Targets being placed by the non-atomic way right now, where a file
   * system has neither renameat2 nor hard links (see path_folders.ts).
   */
  readonly placing = new Set<string>();
  /** Partial keys being written by a session right now (one writer per partial). */
  #busy = new Set<string>();
  /** Bytes accepted by running sessions and not yet written. */
  reserved = 0;
  /** Where small files' fsyncs run: DIR's filesystem decides (shared by all sessions). */
  readonly fsyncPace = new FsyncPace();

  /**
   * The most one write() to a staging file takes: WRITE_PIECE_BYTES on
   * disk, no limit on tmpfs and ramfs (WRITE_PIECE_BYTES says why). With no
   * limit, a large file's writes also run in place instead of on the thread
   * pool (IncomingFile.write): a copy costs less than the hop there and back
   * (docs/PERFORMANCE.md).
   */
  writePiece: number = WRITE_PIECE_BYTES;
  /**
   * Whether DIR's file system gives small files unnamed (O_TMPFILE) in their own folder and
   * names them there (beneath.ts): found out on the first small file, undefined until then;
   * false sends them through the staging folder (tests set it).
   */
  unnamedFiles: boolean | undefined = undefined;

  /** Permission bits that file creation masks out here; null where there are none (Windows). */
  #maskedBits: number | null = null;

  private constructor(
    readonly root: string,
    readonly staging: string,
    readonly partials: string,
    readonly transfers: string,
    /** The C library's file calls (native_fs.ts), or null: Deno's API. */
    readonly native: NativeFs | null,
  ) {}

  /**
   * Opens DIR for receiving: creates it and the staging folder, and checks
   * it is writable. `native` overrides the C library's calls (tests).
   */
  static async open(given: string, native: NativeFs | null = loadNativeFs()): Promise<Inbox> {
    const dir = resolve(given); // errors name the absolute path tried
    try {
      await Deno.mkdir(dir, { recursive: true });
      const root = await Deno.realPath(dir);
      const info = await Deno.stat(root);
      if (!info.isDirectory) throw new FerryError("io", `${dir} is not a directory`);
      const hidden = join(root, STAGING_DIR_NAME);
      await mkdirIfMissing(hidden);
      if (!(await Deno.lstat(hidden)).isDirectory) {
        throw new FerryError("failed", `${hidden} must be a directory (ferry's staging folder)`);
      }
      const staging = join(hidden, "tmp");
      await mkdirIfMissing(staging);
      if (!(await Deno.lstat(staging)).isDirectory) {
        throw new FerryError("failed", `${staging} must be a directory (ferry's staging folder)`);
      }
      const partials = join(hidden, "partial");
      const transfers = join(hidden, "transfers");
      for (const dir of [partials, transfers]) {
        await mkdirIfMissing(dir);
        if (!(await Deno.lstat(dir)).isDirectory) {
          throw new FerryError("failed", `${dir} must be a directory (ferry's staging folder)`);
        }
      }
      const probe = join(staging, `probe-${crypto.randomUUID()}`);
      // (Deno.writeFile would chmod to `mode`; open applies it as creation does.)
      (await Deno.open(probe, { write: true, createNew: true, mode: 0o777 })).close();
      const probed = (await Deno.lstat(probe)).mode;
      await Deno.remove(probe);
      const inbox = new Inbox(root, staging, partials, transfers, native);
      // What file creation takes away from a mode (the umask), seen on a real file.
      if (Deno.build.os !== "windows" && probed !== null) inbox.#maskedBits = 0o777 & ~probed;
      await removeOlderThan(staging, STALE_TEMP_MS);
      if (await inMemory(hidden)) inbox.writePiece = Infinity;
      return inbox;
    } catch (err) {
      if (err instanceof FerryError) throw err;
      if (err instanceof Deno.errors.PermissionDenied || err instanceof Deno.errors.NotCapable) {
        throw new FerryError("io", `cannot write to ${dir}: permission denied`);
      }
      if (osCode(err) === "EROFS") {
        throw new FerryError("io", `cannot write to ${dir}: read-only file system`);
      }
      if (err instanceof Deno.errors.NotADirectory || err instanceof Deno.errors.AlreadyExists) {
        throw new FerryError("io", `${dir} is not a directory`);
      }
      throw err;
    }
  }

  /** Checks a wire name; returns its components or throws a Refusal. */
  parse(name: string, limits: { maxPathBytes: number; maxDepth: number }): string[] {
    const rules = {
      windows: IS_WINDOWS,
      maxPathBytes: limits.maxPathBytes,
      maxDepth: limits.maxDepth,
    };
    const check = checkName(name, rules);
    if (!check.ok) throw new Refusal(check.reason);
    return check.parts;
  }

  /** What is at `path`, without following a link (a metadata call: in place). */
  existing(path: string): Existing {
    return kindOf(this.lookup(path));
  }

  /** The status of what is at `path`, without following a link, or null if nothing is. */
  lookup(path: string): Deno.FileInfo | null {
    try {
      return Deno.lstatSync(path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return null;
      throw storageRefusal(err);
    }
  }

  /** A new, empty, private temporary file in the staging folder. */
  async createTemp(): Promise<{ path: string; file: Deno.FsFile }> {
    const path = join(this.staging, `${crypto.randomUUID()}.tmp`);
    const file = await Deno.open(path, { write: true, createNew: true, mode: 0o600 });
    return { path, file };
  }

  /**
   * `createTemp`, without a thread-pool hop (for small files, whose I/O is
   * short), created with `mode` (owner read and write at least): `chmod`
   * says whether file creation masked some of it out, so that it still needs
   * a chmod.
   */
  createTempSync(mode: number): { path: string; file: Deno.FsFile; chmod: boolean } {
    const path = join(this.staging, `${crypto.randomUUID()}.tmp`);
    const wanted = mode | 0o600;
    const file = Deno.openSync(path, { write: true, createNew: true, mode: wanted });
    return { path, file, chmod: this.needsChmod(wanted) };
  }

  /**
   * Whether a file created with `mode` (owner read and write at least)
   * needs a chmod afterwards: file creation masked some of it out.
   */
  needsChmod(mode: number): boolean {
    return this.#maskedBits !== null && (mode & this.#maskedBits) !== 0;
  }

  /**
   * Claims the partial slot of `entry` (path, size and mtime name the same
   * source file) for one session. Null if another session holds it.
   */
  claimPartial(entry: Entry): HeldPartial | null {
    const key = createHash("sha256")
      .update(JSON.stringify([entry.path, entry.size, entry.mtime]))
      .digest("hex")
      .slice(0, 40);
    if (this.#busy.has(key)) return null;
    this.#busy.add(key);
    return { key, path: join(this.partials, `${key}.part`), size: 0 };
  }

  releasePartial(partial: HeldPartial): void {
    this.#busy.delete(partial.key);
  }

  /**
   * What is held for a claimed partial: its size, the session digest's
   * hasher over those bytes (to continue from), and their SHA-256 in hex,
   * which confirms the prefix with the sender whatever the session's digest
   * (PROTOCOL.md §7: a partial may have been left by another sender, and
   * xxh128 is no proof against one who crafts it). Null if nothing usable
   * is held.
   */
  async readPartial(
    partial: HeldPartial,
    digest: Digest,
    maxSize: number,
  ): Promise<{ size: number; hash: Hasher; prefix: string } | null> {
    let file: Deno.FsFile;
    try {
      const info = await Deno.lstat(partial.path);
      if (!info.isFile || info.size === 0) return null;
      if (info.size > maxSize) {
        await Deno.remove(partial.path);
        return null;
      }
      file = await Deno.open(partial.path, { read: true });
    } catch {
      return null;
    }
    try {
      const prefix = new PrefixHash(digest);
      const buf = new Uint8Array(1024 * 1024);
      let size = 0;
      for (;;) {
        const n = await file.read(buf);
        if (n === null) break;
        prefix.update(buf.subarray(0, n));
        size += n;
      }
      if (size === 0 || size > maxSize) return null;
      const { hash, proof } = prefix.finish();
      return { size, hash, prefix: proof };
    } finally {
      file.close();
    }
  }

  /**
   * Records that transfer `id` has started. Returns null for a new transfer,
   * or, when it had started before and not finished (this session resumes
   * it), when it first started.
   */
  async beginTransfer(id: string): Promise<TransferStart | null> {
    const marker = join(this.transfers, id);
    try {
      await Deno.writeTextFile(marker, String(Date.now()), { createNew: true });
      return null;
    } catch (err) {
      if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
    }
    const born = (await Deno.lstat(marker).catch(() => null))?.birthtime?.getTime() ?? null;
    const now = new Date();
    await Deno.utime(marker, now, now).catch(() => {});
    const since = Number(await Deno.readTextFile(marker).catch(() => ""));
    return { since: Number.isFinite(since) && since > 0 ? since : 0, born };
  }

  /**
   * Removes what is held of `entry` in DIR/.ferry/partial, unless a session
   * is writing it: the receiver will not take this file (PROTOCOL.md §7).
   */
  async dropPartial(entry: Entry): Promise<void> {
    const partial = this.claimPartial(entry);
    if (partial === null) return;
    try {
      await Deno.remove(partial.path);
    } catch {
      /* nothing held */
    } finally {
      this.releasePartial(partial);
    }
  }

  /** Forgets transfer `id`: it completed, so a new run of it is a new copy. */
  async endTransfer(id: string): Promise<void> {
    await Deno.remove(join(this.transfers, id)).catch(() => {});
  }

  /** Removes partial files and transfer markers untouched for `ageMs`. */
  async cleanUp(ageMs: number): Promise<void> {
    await removeOlderThan(
      this.partials,
      ageMs,
      (name) => !this.#busy.has(name.replace(/\.part$/, "")),
    );
    await removeOlderThan(this.transfers, ageMs);
  }

  /** Bytes free for ferry on the receiving file system, or null if unknown. */
  async freeBytes(): Promise<number | null> {
    try {
      const fs = await statfs(this.root);
      return Math.max(0, Number(fs.bavail) * Number(fs.bsize) - FREE_SPACE_MARGIN);
    } catch {
      return null;
    }
  }
}

/** What `info` (an lstat, or null: nothing there) says is at a name. */
export function kindOf(info: Deno.FileInfo | null): Existing {
  if (info === null) return "none";
  return info.isDirectory ? "dir" : info.isFile ? "file" : "other";
}

/**
 * `join(dir, name)` for an absolute, normalized `dir` (from `Folders.ensure`) and
 * a checked component `name` (no separator, not "." or ".."): the same
 * string without join's normalizing pass, which cost a few microseconds a
 * file on trees of many small files.
 */
export function childPath(dir: string, name: string): string {
  return dir.endsWith(sep) ? dir + name : dir + sep + name;
}

/**
 * Whether the file `info` describes was put in place by the transfer that
 * started at `start`, rather than being there before it (PROTOCOL.md §7):
 * born after the transfer's marker, where the file system keeps birth
 * times (a file this transfer stored was created in the staging folder
 * after the marker). Elsewhere: changed since the transfer started (placing
 * a file changes it); Deno gives that time in whole seconds, so a file
 * changed within the second the transfer started counts as its own.
 * Where neither time is known, only the quick check (size and mtime)
 * decides.
 */
export function placedSince(info: Deno.FileInfo, start: TransferStart): boolean {
  const born = info.birthtime?.getTime();
  if (start.born !== null && born !== undefined) return born >= start.born;
  const changed = info.ctime?.getTime();
  if (changed !== undefined) return changed >= Math.floor(start.since / 1000) * 1000;
  return true;
}

/** `report.pdf` → `report (1).pdf`; `.bashrc` → `.bashrc (1)`; `a.tar.gz` → `a.tar (1).gz`. */
export function numberedName(name: string, n: number): string {
  const dot = name.lastIndexOf(".");
  if (dot <= 0) return `${name} (${n})`;
  return `${name.slice(0, dot)} (${n})${name.slice(dot)}`;
}

/**
 * Gives a file its final name `name` in a folder according to `policy`,
 * through `noReplace` (names it `candidate` unless that name is taken:
 * false then) and `replace` (names it, replacing a file there). Returns the
 * name used, or null when it was skipped because the name is taken.
 */
export function nameByPolicy(
  name: string,
  policy: ConflictPolicy,
  noReplace: (candidate: string) => boolean,
  replace: (name: string) => void,
): string | null {
  if (replaces(policy)) {
    replace(name);
    return name;
  }
  const tries = policy === "rename" ? MAX_RENAME_TRIES : 0;
  for (let n = 0; n <= tries; n++) {
    const candidate = n === 0 ? name : numberedName(name, n);
    if (noReplace(candidate)) return candidate;
  }
  if (policy === "skip") return null;
  if (policy === "fail") throw new Refusal("already exists on the receiver");
  throw new Refusal("no free name: too many copies already exist");
}

/** Whether a failed link means this file system has no hard links (FAT, some network shares). */
export function isLinkUnsupported(err: unknown): boolean {
  const code = osCode(err);
  return err instanceof Deno.errors.PermissionDenied && !(err instanceof Deno.errors.NotCapable) ||
    code === "ENOTSUP" || code === "EOPNOTSUPP" || code === "EPERM";
}

/** Removes the files in `dir` not modified for `ageMs` that `removable` allows. */
async function removeOlderThan(
  dir: string,
  ageMs: number,
  removable: (name: string) => boolean = () => true,
): Promise<void> {
  const cutoff = Date.now() - ageMs;
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (!entry.isFile || !removable(entry.name)) continue;
      const path = join(dir, entry.name);
      const info = await Deno.lstat(path).catch(() => null);
      if (info && (info.mtime?.getTime() ?? 0) < cutoff) await Deno.remove(path).catch(() => {});
    }
  } catch { /* the folder vanished: nothing to clean */ }
}

/** statfs f_type of tmpfs and ramfs (linux/magic.h). */
const IN_MEMORY_FS = new Set([0x01021994, 0x858458f6]);

/** Whether `path` is on a file system kept in memory (tmpfs, ramfs). */
async function inMemory(path: string): Promise<boolean> {
  try {
    return IN_MEMORY_FS.has(Number((await statfs(path)).type));
  } catch {
    return false;
  }
}

async function mkdirIfMissing(path: string): Promise<void> {
  try {
    await Deno.mkdir(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
  }
}

/**
 * EDQUOT and EFBIG, the errnos Deno gives only by number (os_errors.ts):
 * Linux's, and the BSDs' and macOS's; Windows has neither.
 */
const EDQUOT = IS_WINDOWS ? null : Deno.build.os === "linux" ? 122 : 69;
const EFBIG = IS_WINDOWS ? null : 27;

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
  const code = osCode(err);
  if (code === "ENOSPC") return new Refusal("the receiver's disk is full");
  // Deno names neither EDQUOT nor EFBIG (os_errors.ts): by their numbers.
  const errno = osErrno(err);
  if (errno === EDQUOT) return new Refusal("the receiver's disk quota is exceeded");
  if (errno === EFBIG) return new Refusal("too large for the receiver's file system");
  if (code === "EROFS") return new Refusal("the receiver's file system is read-only");
  if (code === "ENAMETOOLONG") return new Refusal("name too long for the receiver's file system");
  return err instanceof Error ? err : new Error(String(err));
}

/** At most this many directories are open at once for their fsync. */
const SYNC_DIRS_AT_ONCE = 64;

/**
 * Fsyncs each directory, so the names just created in them are durable:
 * in place while fsyncs are fast, else side by side on the thread pool, as
 * `pace` says (fsync_pace.ts), up to SYNC_DIRS_AT_ONCE at a time.
 */
export async function syncDirs(dirs: Iterable<string>, pace: FsyncPace): Promise<void> {
  if (IS_WINDOWS) return; // directories cannot be opened for fsync there
  let batch: string[] = [];
  for (const dir of dirs) {
    batch.push(dir);
    if (batch.length === SYNC_DIRS_AT_ONCE) {
      await syncBatch(batch, pace);
      batch = [];
    }
  }
  if (batch.length > 0) await syncBatch(batch, pace);
}

async function syncBatch(dirs: string[], pace: FsyncPace): Promise<void> {
  const handles: Deno.FsFile[] = [];
  const syncs: Promise<void>[] = [];
  let failed: { err: unknown } | null = null;
  for (const dir of dirs) {
    try {
      const handle = Deno.openSync(dir, { read: true });
      handles.push(handle);
      syncs.push(fsyncPaced(handle, pace));
    } catch (err) {
      failed = { err };
      break;
    }
  }
  await settleSyncs(syncs, handles, failed);
}
