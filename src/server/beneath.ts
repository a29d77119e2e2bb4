/**
 * A session's folders beneath DIR through folder descriptors (Linux, with
 * the C library's calls from native_fs.ts). See folders.ts for why.
 *
 * - A folder is reached from a descriptor of DIR one component at a time,
 *   each opened with O_NOFOLLOW | O_DIRECTORY relative to the one above it
 *   (and created there with mkdirat where it is missing), so no symbolic
 *   link is ever followed, whatever replaced what before. The walk starts
 *   from the nearest folder above that is open in the cache instead, once
 *   that one passed the check below within CHECK_STANDS_MS.
 * - A file is placed by renameat2(RENAME_NOREPLACE), or linkat then
 *   unlinkat, from the staging folder's descriptor to its folder's: it lands
 *   in the folder that was opened, even if a name on its path was swapped
 *   for a link meanwhile. A small file may instead be made unnamed
 *   (O_TMPFILE) through its folder's descriptor and named there by linkat
 *   (AT_EMPTY_PATH), which never replaces (`createUnnamed`). Its folder's
 *   fsync, mode and times go through the same descriptor.
 * - The descriptors stay open in a small cache per session (at most
 *   FOLDER_FDS, closed when evicted and when the session ends), so a tree
 *   is not walked again for every file. An open descriptor follows its
 *   folder if the folder is moved: so before a placement, every folder from
 *   DIR down is looked up again by name (statx, not following links) and
 *   must still be the one that was opened (device and inode), or that file
 *   is refused. One check stands for the placements in that folder during
 *   the next CHECK_STANDS_MS (a millisecond: a few dozen small files).
 *
 * What remains: a folder moved away (a rename, not a link) between that
 * check and a rename that relies on it (at most a millisecond, unless the
 * process is held up between the two) still receives those files. Only a
 * user who may write both where the folder was and where it went can move
 * it, so a file can land only where that user could write anyway; and the
 * file is then not under its name beneath DIR. A link swapped in is never
 * followed, whenever it comes.
 */
import {
  childPath,
  type ConflictPolicy,
  type Inbox,
  isLinkUnsupported,
  nameByPolicy,
  Refusal,
  replacedReason,
  replaces,
  STAGING_REPLACED,
  storageRefusal,
} from "./inbox.ts";
import { FileId, type NativeFs } from "./native_fs.ts";
import type { FileReader, Folders, Looked } from "./folders.ts";
import { fsyncPaced, settleSyncs } from "./fsync_pace.ts";
import { osCode } from "../os_errors.ts";

/**
 * Folder descriptors a session keeps open at most, besides DIR's and the
 * staging folders': with the server's 64 sessions, a few thousand in all.
 * Files arrive folder by folder, so a few recent folders serve most of them.
 */
export const FOLDER_FDS = 32;

/** How many folders are fsynced on the thread pool at once. */
const SYNC_AT_ONCE = 64;

/** Folders created per session that are remembered as such (see Folders.ensure). */
const CREATED_LIMIT = 65536;

/**
 * How long (ms) a check from DIR down of a folder stands for the placements and `look`'s
 * lookups in it: files arrive folder by folder, a small one every few tens of microseconds,
 * and a sync's quick check looks at every file, announced together with its folder's.
 */
export const CHECK_STANDS_MS = 1;

/**
 * What linkat says where it cannot name a file by its descriptor: ENOENT
 * before Linux 6.10 without CAP_DAC_READ_SEARCH, the others where a file
 * system or a sandbox refuses it.
 */
const NO_UNNAMED_LINK = new Set(["ENOENT", "EPERM", "EACCES", "EINVAL", "EOPNOTSUPP", "ENOTSUP"]);

/** What `#identify` says of a name that a file on its way hides. */
const A_FILE = new FileId("file", 0, 0, 0, 0);

/** An open folder beneath DIR. */
class Folder {
  /** Entries changed in it that are not fsynced yet. */
  dirty = false;
  /** When it was last checked from DIR down (performance.now()), for `#verifyRecent`. */
  checked = -Infinity;

  constructor(
    /** Its path relative to DIR ("a/b"; "" for DIR). */
    readonly key: string,
    /** Its absolute path. */
    readonly path: string,
    readonly fd: number,
    /** The relative path of each folder from DIR's child down to it, as C strings. */
    readonly prefixes: Uint8Array[],
    /** Which folder each of those was when it was opened; the last is this one. */
    readonly ids: FileId[],
  ) {}
}

export class BeneathFolders implements Folders {
  readonly #native: NativeFs;
  #root: Folder | null = null;
  #rootId: FileId | null = null;
  /** Open folders by their relative path, least recently used first. */
  #cache = new Map<string, Folder>();
  /** The folder `#folder` gave last, while it is in the cache (and so the most recently used). */
  #recent: Folder | null = null;
  /** Descriptors of the staging folders (DIR/.ferry/tmp and /partial) by absolute path. */
  #sources = new Map<string, number>();
  /** Set once renameat2 said this file system cannot rename without replacing. */
  #noRenameNoReplace = false;
  readonly #encoder = new TextEncoder();

  constructor(readonly inbox: Inbox, native: NativeFs) {
    this.#native = native;
  }

  ensure(parts: string[], created?: Set<string>): Promise<string> {
    // Most names are in a folder open already: no async call then, only a settled promise.
    try {
      const key = parts.join("/");
      const open = this.#open(key);
      if (open !== null) return Promise.resolve(open.path);
      return this.#folder(key, parts, created ?? null).then((folder) => folder.path);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  async place(
    temp: string,
    dir: string,
    name: string,
    policy: ConflictPolicy,
  ): Promise<string | null> {
    return this.#placeIn(await this.#folder(this.#keyOf(dir), null, null), temp, name, policy);
  }

  placeNow(
    temp: string,
    dir: string,
    name: string,
    policy: ConflictPolicy,
  ): string | null | undefined {
    const folder = this.#open(this.#keyOf(dir));
    return folder === null ? undefined : this.#placeIn(folder, temp, name, policy);
  }

  /** Gives the staged file `temp` its final name in the open `folder` (see `place`). */
  #placeIn(folder: Folder, temp: string, name: string, policy: ConflictPolicy): string | null {
    const native = this.#native;
    const source = this.#source(temp);
    // From here to the rename, nothing waits: the rename follows the check (or the one it
    // relies on, at most CHECK_STANDS_MS before) as closely as it gets.
    this.#verifyRecent(folder);
    // Most names are free: placed without making nameByPolicy's callbacks (a taken one is
    // tried again there, as its first candidate).
    if (!replaces(policy) && this.#nameNoReplace(source, folder, name)) {
      folder.dirty = true;
      return name;
    }
    const placed = nameByPolicy(
      name,
      policy,
      (candidate) => this.#nameNoReplace(source, folder, candidate),
      (target) => {
        if (this.#identify(target, folder.fd)?.kind === "dir") {
          throw new Refusal("a directory is in the way");
        }
        try {
          native.rename(source.name, target, source.fd, folder.fd);
        } catch (err) {
          throw storageRefusal(err);
        }
      },
    );
    if (placed !== null) folder.dirty = true;
    return placed;
  }

  async look(dir: string, name: string): Promise<Looked | null> {
    const folder = await this.#folder(this.#keyOf(dir), null, null);
    this.#verifyRecent(folder);
    let found;
    try {
      found = this.#native.look(name, folder.fd);
    } catch (err) {
      throw storageRefusal(err);
    }
    if (found === null) return null;
    const kind = found.id.kind === "link" ? "other" : found.id.kind;
    return { kind, size: found.size, mtimeMs: found.mtimeMs };
  }

  async openFile(dir: string, name: string): Promise<FileReader | null> {
    const folder = await this.#folder(this.#keyOf(dir), null, null);
    this.#verify(folder);
    // Opened in the checked folder, never by path: what is at the name now (a link, a FIFO
    // swapped in after a look) is not followed, and does not block the open.
    return this.#native.openToRead(name, folder.fd);
  }

  checkStaged(path: string, info: Deno.FileInfo): void {
    const { fd, name } = this.#source(path);
    const found = this.#identify(name, fd);
    if (found === null || found.kind !== "file" || !found.sameAs(info)) {
      throw new Refusal(STAGING_REPLACED);
    }
  }

  async setMetadata(dir: string, mode: number | null, mtimeMs: number): Promise<void> {
    const folder = await this.#folder(this.#keyOf(dir), null, null);
    this.#verify(folder);
    if (mode !== null) this.#native.setMode(folder.fd, mode);
    this.#native.setTimes(folder.fd, mtimeMs);
    folder.dirty = true;
  }

  get dirty(): number {
    let n = this.#root?.dirty ? 1 : 0;
    for (const folder of this.#cache.values()) if (folder.dirty) n++;
    return n;
  }

  /**
   * Fsyncs the dirty folders through their descriptors: in place while
   * fsyncs are fast, else side by side on the thread pool, as the inbox's
   * pace says (fsync_pace.ts).
   */
  async sync(): Promise<void> {
    const pace = this.inbox.fsyncPace;
    const later: Folder[] = [];
    const dirty = this.#root?.dirty ? [this.#root] : [];
    for (const folder of this.#cache.values()) if (folder.dirty) dirty.push(folder);
    for (const folder of dirty) {
      if (!pace.inline()) {
        later.push(folder);
        continue;
      }
      const started = performance.now();
      try {
        this.#native.fsync(folder.fd);
      } finally {
        pace.record(performance.now() - started);
      }
      folder.dirty = false;
    }
    for (let at = 0; at < later.length; at += SYNC_AT_ONCE) {
      await this.#syncOnThreadPool(later.slice(at, at + SYNC_AT_ONCE));
    }
  }

  close(): void {
    const fds = [...this.#sources.values()];
    for (const folder of this.#cache.values()) fds.push(folder.fd);
    if (this.#root !== null) fds.push(this.#root.fd);
    this.#sources.clear();
    this.#cache.clear();
    this.#recent = null;
    this.#root = null;
    for (const fd of fds) this.#closeQuietly(fd);
  }

  /**
   * A new, empty, private temporary file in the staging folder, created
   * through its descriptor, with `mode` (owner read and write at least):
   * `chmod` says whether file creation masked some of it out.
   */
  createTemp(mode: number): { path: string; fd: number; chmod: boolean } {
    const { staging } = this.inbox;
    const dir = this.#sourceFd(staging);
    const name = `${crypto.randomUUID()}.tmp`;
    const wanted = mode | 0o600;
    const fd = this.#native.createExclusive(name, wanted, dir);
    return { path: childPath(staging, name), fd, chmod: this.inbox.needsChmod(wanted) };
  }

  /**
   * A new, empty, private unnamed file (O_TMPFILE) for writing in folder
   * `dir` (from `ensure`), with `mode` as `createTemp` takes it, to be named
   * by `placeUnnamedNow` or `placeUnnamed`, or dropped by closing it: no
   * staging name to make, and one rename less for every small file. Null
   * where that folder is not open now, or where DIR's file system has no
   * unnamed files that can be named (`Inbox.unnamedFiles`): then `createTemp`.
   */
  createUnnamed(dir: string, mode: number): { fd: number; chmod: boolean } | null {
    let works = this.inbox.unnamedFiles;
    if (works === undefined) {
      const probed = this.#probeUnnamed();
      // A passing failure (no descriptor left, a full disk) decides nothing: asked again later.
      if (probed !== null) this.inbox.unnamedFiles = probed;
      works = probed === true;
    }
    if (!works) return null;
    const folder = this.#open(this.#keyOf(dir));
    if (folder === null) return null;
    const wanted = mode | 0o600;
    const fd = this.#native.createUnnamed(wanted, folder.fd);
    return fd === null ? null : { fd, chmod: this.inbox.needsChmod(wanted) };
  }

  /**
   * Whether an unnamed file made in the staging folder can be named there
   * (the name is removed again): the file system must have unnamed files,
   * and linkat must name one by its descriptor (AT_EMPTY_PATH: Linux 6.10,
   * or the CAP_DAC_READ_SEARCH capability before). Null where a passing
   * failure (EMFILE, ENOSPC, the staging folder not opening) left it
   * undecided.
   */
  #probeUnnamed(): boolean | null {
    const native = this.#native;
    let fd: number | null = null;
    let dir: number;
    try {
      dir = this.#sourceFd(this.inbox.staging);
      fd = native.createUnnamed(0o600, dir);
    } catch {
      return null;
    }
    if (fd === null) return false;
    try {
      const name = `probe-${crypto.randomUUID()}.tmp`;
      if (!native.linkUnnamed(fd, name, dir)) return null; // a name taken: try again later
      try {
        native.unlink(name, dir);
      } catch { /* left in the staging folder, which start-up clears of old files */ }
      return true;
    } catch (err) {
      return NO_UNNAMED_LINK.has(osCode(err) ?? "") ? false : null;
    } finally {
      this.#closeQuietly(fd);
    }
  }

  /**
   * Names the unnamed file open at `fd` (`createUnnamed`) `name` in folder
   * `dir`, by a policy that never replaces a file (`place`'s rules
   * otherwise): at once where the folder is open (undefined where it is not:
   * then `placeUnnamed`). The caller closes `fd` afterwards.
   */
  placeUnnamedNow(
    fd: number,
    dir: string,
    name: string,
    policy: ConflictPolicy,
  ): string | null | undefined {
    const folder = this.#open(this.#keyOf(dir));
    return folder === null ? undefined : this.#nameUnnamed(folder, fd, name, policy);
  }

  /** `placeUnnamedNow`, where the folder has to be opened first. */
  async placeUnnamed(
    fd: number,
    dir: string,
    name: string,
    policy: ConflictPolicy,
  ): Promise<string | null> {
    const folder = await this.#folder(this.#keyOf(dir), null, null);
    return this.#nameUnnamed(folder, fd, name, policy);
  }

  #nameUnnamed(folder: Folder, fd: number, name: string, policy: ConflictPolicy): string | null {
    if (replaces(policy)) throw new Error("an unnamed file is never put in place of another");
    const native = this.#native;
    // As in `#placeIn`: the link follows the check as closely as it gets.
    this.#verifyRecent(folder);
    const link = (candidate: string): boolean => {
      try {
        return native.linkUnnamed(fd, candidate, folder.fd);
      } catch (err) {
        throw storageRefusal(err);
      }
    };
    // Most names are free: named without nameByPolicy (a taken one is tried again there).
    if (link(name)) {
      folder.dirty = true;
      return name;
    }
    const placed = nameByPolicy(name, policy, link, () => {});
    if (placed !== null) folder.dirty = true;
    return placed;
  }

  /** Removes a temporary file that `createTemp` made. */
  removeTemp(path: string): void {
    const { fd, name } = this.#source(path);
    this.#native.unlink(name, fd);
  }

  /** The relative path of `dir`, an absolute path beneath DIR from `ensure`. */
  #keyOf(dir: string): string {
    // Most often the folder's own path string from `ensure`, as the last call had.
    const recent = this.#recent;
    if (recent !== null && dir === recent.path) return recent.key;
    const { root } = this.inbox;
    if (dir === root) return "";
    const prefix = root.endsWith("/") ? root : `${root}/`;
    if (!dir.startsWith(prefix)) throw new Error(`not beneath the receiving folder: ${dir}`);
    return dir.slice(prefix.length);
  }

  #rootFolder(): Folder {
    if (this.#root !== null) return this.#root;
    // DIR as it was resolved when the server started (no link in it then); the descriptor stays.
    const fd = this.#native.openFolder(this.inbox.root);
    this.#root = new Folder("", this.inbox.root, fd, [], []);
    try {
      this.#rootId = this.#native.identify("", fd);
    } catch (err) {
      this.close();
      throw err;
    }
    return this.#root;
  }

  /**
   * The open folder at `key`: from the cache, or walked to from DIR (and,
   * given `parts`, created where missing, each created one added to
   * `created`).
   */
  async #folder(key: string, parts: string[] | null, created: Set<string> | null): Promise<Folder> {
    const open = this.#open(key);
    if (open !== null) return open;
    const folder = this.#walk(key, parts, created);
    this.#keep(folder);
    this.#recent = folder;
    if (this.#cache.size > FOLDER_FDS) {
      // Every folder kept is dirty: sync them all, then they may go.
      await this.sync();
      this.#evict(folder);
    }
    return folder;
  }

  /** The folder at `key` if it is open already (DIR, or in the cache), else null. */
  #open(key: string): Folder | null {
    const root = this.#rootFolder();
    if (key === "") return root;
    // Files come folder by folder: the folder asked for last is most often asked for again.
    const recent = this.#recent;
    if (recent !== null && recent.key === key) return recent;
    const hit = this.#cache.get(key);
    if (hit === undefined) return null;
    this.#cache.delete(key);
    this.#cache.set(key, hit);
    this.#recent = hit;
    return hit;
  }

  /** Adds `folder` to the cache, closing the least recently used clean folders past the bound. */
  #keep(folder: Folder): void {
    const old = this.#cache.get(folder.key);
    if (old !== undefined) this.#forget(old);
    this.#cache.set(folder.key, folder);
    this.#evict(folder);
  }

  /** Closes the least recently used clean folders past the bound, never `keep`. */
  #evict(keep: Folder): void {
    for (const folder of this.#cache.values()) {
      if (this.#cache.size <= FOLDER_FDS) return;
      if (!folder.dirty && folder !== keep) this.#forget(folder);
    }
  }

  /** Drops `folder` from the cache and closes it (fsynced first if entries in it changed). */
  #forget(folder: Folder): void {
    if (this.#recent === folder) this.#recent = null;
    if (this.#cache.get(folder.key) === folder) this.#cache.delete(folder.key);
    if (folder.dirty) {
      try {
        this.#native.fsync(folder.fd);
      } catch { /* the folder was replaced: what is in it is no longer at its name */ }
    }
    this.#closeQuietly(folder.fd);
  }

  /**
   * Opens the folder at `key` from DIR down, one component at a time, never
   * through a link. With `parts` (the components of `key`), creates what is
   * missing; without, a folder missing now was removed or moved since it
   * was announced.
   */
  #walk(key: string, parts: string[] | null, created: Set<string> | null): Folder {
    const native = this.#native;
    const create = parts !== null;
    const names = parts ?? key.split("/");
    // From the nearest folder above that is open and was just checked from DIR down (a new
    // folder's parent, most often), else from DIR.
    const start = this.#openAncestor(key, names.length) ?? this.#root!;
    const prefixes: Uint8Array[] = start.prefixes.slice();
    const ids: FileId[] = start.ids.slice();
    let fd = start.fd;
    /** Whether `fd` is this walk's to close (not DIR's, not handed to the cache). */
    let owned = false;
    let path = start.path;
    let prefix = start.key;
    try {
      for (let i = start.ids.length; i < names.length; i++) {
        const name = names[i]!;
        const parent = { fd, path, key: prefix };
        path = childPath(path, name);
        prefix = prefix === "" ? name : `${prefix}/${name}`;
        let next: number | null;
        try {
          next = create ? native.openFolderIfAny(name, fd) : native.openFolder(name, fd);
        } catch (err) {
          throw this.#refusal(name, fd, err, create);
        }
        if (next === null) {
          let made = false;
          try {
            native.makeFolder(name, fd);
            made = true;
          } catch (err) {
            if (!(err instanceof Deno.errors.AlreadyExists)) throw storageRefusal(err);
          }
          try {
            next = native.openFolder(name, fd);
          } catch (err) {
            throw this.#refusal(name, fd, err, create);
          }
          if (made) {
            if (created !== null && created.size < CREATED_LIMIT) created.add(path);
            // Its parent's new entry is durable only once the parent is fsynced: keep it open.
            if (this.#markDirty(parent, prefixes, ids, owned)) owned = false;
          }
        }
        if (owned) native.close(fd);
        fd = next;
        owned = true;
        prefixes.push(this.#encoder.encode(`${prefix}\0`));
        ids.push(native.identify("", fd)!);
      }
    } catch (err) {
      if (owned) this.#closeQuietly(fd);
      throw err;
    }
    return new Folder(key, path, fd, prefixes, ids);
  }

  /**
   * The deepest folder above `key` (which has `depth` components) that is in
   * the cache and still the folder that was opened, checked from DIR down
   * (`#verifyRecent`); null if there is none. One that fails the check is
   * dropped, and the walk goes on from higher up.
   */
  #openAncestor(key: string, depth: number): Folder | null {
    let end = key.length;
    for (let level = depth - 1; level > 0; level--) {
      end = key.lastIndexOf("/", end - 1);
      if (end <= 0) return null;
      const ancestor = this.#cache.get(key.slice(0, end));
      if (ancestor === undefined) continue;
      try {
        this.#verifyRecent(ancestor);
      } catch (err) {
        if (err instanceof Refusal) continue; // dropped by #verify: it was moved or replaced
        throw err;
      }
      return this.#open(ancestor.key);
    }
    return null;
  }

  /**
   * Marks the folder the walk is in (`parent`, with the walk's `prefixes`
   * and `ids` so far) dirty. True when the walk's descriptor was handed to
   * the cache for that (the walk must not close it then).
   */
  #markDirty(
    parent: { fd: number; path: string; key: string },
    prefixes: Uint8Array[],
    ids: FileId[],
    owned: boolean,
  ): boolean {
    if (parent.key === "") {
      this.#root!.dirty = true;
      return false;
    }
    const cached = this.#cache.get(parent.key);
    if (cached !== undefined && cached.ids.at(-1)!.same(ids.at(-1)!)) {
      cached.dirty = true;
      return false;
    }
    if (!owned) return false;
    const folder = new Folder(parent.key, parent.path, parent.fd, [...prefixes], [...ids]);
    folder.dirty = true;
    this.#keep(folder);
    return true;
  }

  /**
   * Checks, right before a placement, that every folder from DIR down to
   * `folder` is still the folder that was opened, at its name and not a
   * link. If not, the folder is dropped from the cache and the file refused.
   */
  #verify(folder: Folder): void {
    const root = this.#root!.fd;
    const { ids, prefixes } = folder;
    for (let i = 0; i < ids.length; i++) {
      const prefix = prefixes[i]!;
      if (this.#native.isFolder(prefix, root, ids[i]!)) continue;
      // Not the folder that was opened: what is there says why (and a failed statx, how).
      const found = this.#identify(prefix, root);
      if (found !== null && found.kind === "dir" && found.same(ids[i]!)) continue;
      this.#forget(folder);
      throw new Refusal(replacedReason(found === null ? "none" : found.kind));
    }
  }

  /**
   * `#verify`, unless `folder` was found to be the one opened at most CHECK_STANDS_MS ago:
   * in the placements of a folder's files one after the other, the check is made about once
   * a millisecond rather than for every file.
   */
  #verifyRecent(folder: Folder): void {
    const now = performance.now();
    if (now - folder.checked <= CHECK_STANDS_MS) return;
    this.#verify(folder);
    folder.checked = now;
  }

  /** `identify`, where a file in place of a folder on the way reads as that file. */
  #identify(name: string | Uint8Array, dir: number): FileId | null {
    try {
      return this.#native.identify(name, dir);
    } catch (err) {
      if (err instanceof Deno.errors.NotADirectory) return A_FILE;
      throw storageRefusal(err);
    }
  }

  /** Why `name` in folder `dir` could not be opened as a folder. */
  #refusal(name: string, dir: number, err: unknown, announcing: boolean): Error {
    const found = this.#identify(name, dir);
    if (found === null) {
      return announcing ? storageRefusal(err) : new Refusal(replacedReason("none"));
    }
    if (found.kind === "dir") return storageRefusal(err);
    if (!announcing) return new Refusal(replacedReason(found.kind));
    return new Refusal(
      found.kind === "file"
        ? "a file is in the way of a directory"
        : "the path goes through a symbolic link or special file on the receiver",
    );
  }

  /**
   * The descriptor of the staging folder holding `temp` (DIR/.ferry/tmp or
   * DIR/.ferry/partial), opened once per session without following links,
   * and `temp`'s name in it.
   */
  #source(temp: string): { fd: number; name: string } {
    const slash = temp.lastIndexOf("/");
    return { fd: this.#sourceFd(temp.slice(0, slash)), name: temp.slice(slash + 1) };
  }

  #sourceFd(dir: string): number {
    let fd = this.#sources.get(dir);
    if (fd === undefined) {
      const { staging, partials } = this.inbox;
      if (dir !== staging && dir !== partials) throw new Error(`not a staging folder: ${dir}`);
      fd = this.#openStaging(this.#keyOf(dir).split("/"));
      this.#sources.set(dir, fd);
    }
    return fd;
  }

  #openStaging(names: string[]): number {
    const native = this.#native;
    let fd = this.#rootFolder().fd;
    let owned = false;
    try {
      for (const name of names) {
        let next: number;
        try {
          next = native.openFolder(name, fd);
        } catch (err) {
          throw new Refusal(
            `ferry's staging folder cannot be opened: ${storageRefusal(err).message}`,
          );
        }
        if (owned) native.close(fd);
        fd = next;
        owned = true;
      }
    } catch (err) {
      if (owned) this.#closeQuietly(fd);
      throw err;
    }
    return fd;
  }

  /**
   * Names the staged file `candidate` in `folder` unless that name is taken:
   * renameat2(RENAME_NOREPLACE), or where the file system has none, a link
   * then an unlink, or where it has no links either, a check then a rename
   * (serialized per target in this process through Inbox.placing).
   */
  #nameNoReplace(
    source: { fd: number; name: string },
    folder: Folder,
    candidate: string,
  ): boolean {
    const native = this.#native;
    if (!this.#noRenameNoReplace) {
      const result = native.renameNoReplace(source.name, candidate, source.fd, folder.fd);
      if (result === "renamed") return true;
      if (result === "exists") return false;
      if (result === "unsupported") this.#noRenameNoReplace = true;
    }
    try {
      if (!native.link(source.name, candidate, source.fd, folder.fd)) return false;
      native.unlink(source.name, source.fd);
      return true;
    } catch (err) {
      if (!isLinkUnsupported(err)) throw storageRefusal(err);
    }
    const { placing } = this.inbox;
    const target = childPath(folder.path, candidate);
    if (placing.has(target)) return false;
    placing.add(target);
    try {
      if (this.#identify(candidate, folder.fd) !== null) return false;
      native.rename(source.name, candidate, source.fd, folder.fd);
      return true;
    } catch (err) {
      throw storageRefusal(err);
    } finally {
      placing.delete(target);
    }
  }

  /**
   * Fsyncs `folders` side by side on the thread pool. Deno's calls take a
   * path, so each is opened by its path and used only if it is the folder
   * the descriptor holds; one that is not (replaced meanwhile) is fsynced
   * through the descriptor, in place.
   */
  async #syncOnThreadPool(folders: Folder[]): Promise<void> {
    const pace = this.inbox.fsyncPace;
    const handles: Deno.FsFile[] = [];
    const syncs: Promise<void>[] = [];
    let failed: { err: unknown } | null = null;
    for (const folder of folders) {
      try {
        const id = folder === this.#root ? this.#rootId! : folder.ids.at(-1)!;
        let handle: Deno.FsFile | null = null;
        try {
          handle = Deno.openSync(folder.path, { read: true });
          if (!id.sameAs(handle.statSync())) {
            handle.close();
            handle = null;
          }
        } catch { /* not there by its path: through the descriptor */ }
        if (handle === null) {
          this.#native.fsync(folder.fd);
          continue;
        }
        handles.push(handle);
        syncs.push(fsyncPaced(handle, pace, false));
      } catch (err) {
        failed = { err };
        break;
      }
    }
    await settleSyncs(syncs, handles, failed);
    for (const folder of folders) folder.dirty = false;
  }

  #closeQuietly(fd: number): void {
    try {
      this.#native.close(fd);
    } catch { /* closed anyway */ }
  }
}
