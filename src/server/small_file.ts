/**
 * Files that fit in one DATA frame (the common case in a tree of many small
 * files) take a short path: their bytes are held in memory until FILE_END,
 * checked there (length, digest) before anything touches the disk, then
 * written and given their metadata; each is placed once its own fsync has
 * finished, in order, before anything that depends on it is acknowledged or
 * its folder's metadata is set. The I/O is small, so it runs in place
 * instead of hopping to the thread pool; so does the fsync while it is fast,
 * and where it waits on a disk, the fsyncs of several files run side by side
 * on the thread pool (fsync_pace.ts). While fsyncs run in place, on Linux,
 * the calls go straight to the C library (native_fs.ts), at about half the
 * cost of Deno's. There the file is written unnamed (O_TMPFILE) in its own
 * folder and named by a link that never replaces (`UnnamedFile`): no
 * staging name to make, and a link into the same folder costs less than a
 * rename from the staging folder. A policy that replaces (overwrite,
 * update), a folder not open at the time, or a file system without such
 * files takes a staging file, created through the staging folder's
 * descriptor (beneath.ts).
 */
import { MAX_FRAME_PAYLOAD } from "../protocol/limits.ts";
import type { FileEnd } from "../protocol/frame.ts";
import type { Digest } from "../protocol/digests.ts";
import type { Entry } from "../protocol/messages.ts";
import { type ConflictPolicy, type Inbox, replaces, storageRefusal } from "./inbox.ts";
import type { Staged } from "./ack_queue.ts";
import { type FsyncPace, fsyncPaced } from "./fsync_pace.ts";
import { DamagedData, KEPT_MODE_BITS, writeAllSync } from "./incoming_file.ts";
import { BeneathFolders } from "./beneath.ts";
import type { Folders } from "./folders.ts";

/** Largest file taken by the short path: one DATA frame. */
export const SMALL_FILE_MAX = MAX_FRAME_PAYLOAD;

/** A session's buffer for the small file in progress (one per session, reused). */
export class SmallFile {
  #buf = new Uint8Array(0);
  #length = 0;
  entry: Entry | null = null;

  /** Starts collecting the data of `entry` (size known, at most SMALL_FILE_MAX). */
  begin(entry: Entry): void {
    if (this.#buf.length < entry.size!) {
      this.#buf = new Uint8Array(Math.max(entry.size!, 64 * 1024));
    }
    this.entry = entry;
    this.#length = 0;
  }

  /** Appends `chunk`; refuses data beyond the announced size. */
  add(chunk: Uint8Array): void {
    const size = this.entry!.size!;
    if (this.#length + chunk.length > size) {
      throw new DamagedData(`the sender sent more than the ${size} bytes it announced`);
    }
    this.#buf.set(chunk, this.#length);
    this.#length += chunk.length;
  }

  /**
   * Verifies the file and writes it to a staging file with its metadata,
   * and starts its fsync: in place while fsyncs are fast, else on the thread
   * pool, where the fsyncs of several small files overlap (fsync_pace.ts).
   * It is awaited before the file is placed (StagedFile).
   */
  stage(
    end: FileEnd,
    folders: Folders,
    digest: Digest,
    dir: string,
    policy: ConflictPolicy,
  ): Staged {
    const entry = this.entry!;
    this.entry = null;
    const data = this.#buf.subarray(0, this.#length);
    if (data.length !== entry.size) {
      throw new DamagedData(`received ${data.length} bytes, but ${entry.size} were announced`);
    }
    if (end.length !== data.length) {
      throw new DamagedData(
        `received ${data.length} bytes, but the sender says it sent ${end.length}`,
      );
    }
    if (!sameBytes(digest.of(data), end.digest)) {
      throw new DamagedData("digest mismatch: the data was altered in transit");
    }
    const mode = (entry.mode & KEPT_MODE_BITS) | 0o600;
    const { inbox } = folders;
    const { fsyncPace } = inbox;
    // The C library's calls where fsyncs run in place (native_fs.ts); Deno's where they may not.
    const inline = fsyncPace.inline();
    if (folders instanceof BeneathFolders && inline) {
      let unnamed = null;
      try {
        // Named later in its own folder by a link that never replaces; a policy that replaces
        // renames a staging file over the old one instead.
        unnamed = replaces(policy) ? null : folders.createUnnamed(dir, mode);
      } catch (err) {
        throw storageRefusal(err);
      }
      return unnamed !== null
        ? stageUnnamed(data, entry, mode, folders, unnamed)
        : stageNative(data, entry, mode, folders);
    }
    let temp: { path: string; file: Deno.FsFile } | null = null;
    try {
      const created = inbox.createTempSync(mode);
      temp = created;
      // Created by path: it must be in ferry's staging folder, not through a link (folders.ts).
      folders.checkStaged(temp.path, temp.file.statSync());
      writeAllSync(temp.file, data, inbox.writePiece);
      if (created.chmod) Deno.chmodSync(temp.path, mode);
      const mtime = new Date(entry.mtime);
      temp.file.utimeSync(mtime, mtime);
      return new StagedFile(temp.path, temp.file, data.length, fsyncPace, inline);
    } catch (err) {
      if (temp !== null) new StagedFile(temp.path, temp.file, 0, null).drop();
      throw storageRefusal(err);
    }
  }
}

/** Whether `a` and `b` hold the same bytes (a loop: no callback to allocate for every file). */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** `SmallFile.stage` through the C library: written, synced in place and closed. */
function stageNative(
  data: Uint8Array,
  entry: Entry,
  mode: number,
  folders: BeneathFolders,
): StagedFile {
  const { inbox } = folders;
  const native = inbox.native!;
  let created: { path: string; fd: number; chmod: boolean };
  try {
    created = folders.createTemp(mode);
  } catch (err) {
    throw storageRefusal(err);
  }
  const { path, fd } = created;
  let open = true;
  try {
    writeSynced(data, entry, mode, created.chmod, fd, inbox);
    open = false;
    native.close(fd);
    return new StagedFile(path, null, data.length, null);
  } catch (err) {
    if (open) {
      try {
        native.close(fd);
      } catch { /* closed anyway */ }
    }
    try {
      folders.removeTemp(path);
    } catch { /* gone */ }
    throw storageRefusal(err);
  }
}

/** `SmallFile.stage` into an unnamed file in its own folder: written and synced in place. */
function stageUnnamed(
  data: Uint8Array,
  entry: Entry,
  mode: number,
  folders: BeneathFolders,
  created: { fd: number; chmod: boolean },
): UnnamedFile {
  try {
    writeSynced(data, entry, mode, created.chmod, created.fd, folders.inbox);
  } catch (err) {
    try {
      folders.inbox.native!.close(created.fd);
    } catch { /* closed anyway; unnamed, it is gone */ }
    throw storageRefusal(err);
  }
  return new UnnamedFile(created.fd, data.length, folders);
}

/** Writes `data` to `fd`, gives it its mode (where the umask took some) and time, and fsyncs it. */
function writeSynced(
  data: Uint8Array,
  entry: Entry,
  mode: number,
  chmod: boolean,
  fd: number,
  inbox: Inbox,
): void {
  const native = inbox.native!;
  const piece = inbox.writePiece;
  if (data.length <= piece) {
    native.write(fd, data);
  } else {
    for (let at = 0; at < data.length; at += piece) {
      native.write(fd, data.subarray(at, at + piece));
    }
  }
  if (chmod) native.setMode(fd, mode);
  native.setTimes(fd, entry.mtime);
  const started = performance.now();
  try {
    native.fsync(fd);
  } finally {
    inbox.fsyncPace.record(performance.now() - started);
  }
}

/**
 * A verified small file, synced, as an unnamed file in its own folder
 * (`BeneathFolders.createUnnamed`), open until it is named: if the session
 * ends first, closing it is all it takes to leave nothing behind.
 */
export class UnnamedFile implements Staged {
  #open = true;

  constructor(readonly fd: number, readonly bytes: number, readonly folders: BeneathFolders) {}

  /** Names it (or skips it, the name taken), then closes it; at once where its folder is open. */
  place(
    _folders: Folders,
    dir: string,
    name: string,
    policy: ConflictPolicy,
  ): Promise<string | null> | string | null {
    let placed: string | null | undefined;
    try {
      placed = this.folders.placeUnnamedNow(this.fd, dir, name, policy);
    } catch (err) {
      this.drop();
      throw storageRefusal(err);
    }
    if (placed === undefined) return this.#placeLater(dir, name, policy);
    this.drop();
    return placed;
  }

  async #placeLater(dir: string, name: string, policy: ConflictPolicy): Promise<string | null> {
    try {
      return await this.folders.placeUnnamed(this.fd, dir, name, policy);
    } catch (err) {
      throw storageRefusal(err);
    } finally {
      this.drop();
    }
  }

  /** Closes it: named, the file stays; not named, it is gone. */
  drop(): void {
    if (!this.#open) return;
    this.#open = false;
    try {
      this.folders.inbox.native!.close(this.fd);
    } catch { /* closed anyway */ }
  }
}

/** A verified small file on disk in the staging folder, its fsync under way or done. */
export class StagedFile {
  /** Its fsync under way; null once it is known to be done (synced in stage()). */
  #syncing: Promise<void> | null;
  #closed = false;

  /**
   * Starts its fsync, in place or not as `pace` says, or `inline` if
   * `pace` was asked already (no pace: it was synced and closed already,
   * `file` is null, or it is only to be dropped).
   */
  constructor(
    readonly path: string,
    readonly file: Deno.FsFile | null,
    readonly bytes: number,
    pace: FsyncPace | null,
    inline?: boolean,
  ) {
    this.#syncing = pace === null || file === null
      ? null
      : fsyncPaced(file, pace, inline ?? pace.inline());
    this.#syncing?.catch(() => {}); // awaited in place()
  }

  /**
   * Waits for its fsync, then gives it its final name in `dir` (from
   * `folders.ensure`). Returns the name, or null if skipped: at once where
   * nothing waits (synced already, its folder open: `Folders.placeNow`).
   */
  place(
    folders: Folders,
    dir: string,
    name: string,
    policy: ConflictPolicy,
  ): Promise<string | null> | string | null {
    if (this.#syncing === null && folders.placeNow !== undefined) {
      let placed: string | null | undefined;
      try {
        this.#close();
        placed = folders.placeNow(this.path, dir, name, policy);
      } catch (err) {
        this.drop();
        throw storageRefusal(err);
      }
      if (placed === null) this.drop();
      if (placed !== undefined) return placed;
    }
    return this.#placeLater(folders, dir, name, policy);
  }

  async #placeLater(
    folders: Folders,
    dir: string,
    name: string,
    policy: ConflictPolicy,
  ): Promise<string | null> {
    try {
      await this.#syncing;
      this.#close();
      const placed = await folders.place(this.path, dir, name, policy);
      if (placed === null) this.drop();
      return placed;
    } catch (err) {
      this.drop();
      throw storageRefusal(err);
    }
  }

  /** Removes it (a failure, or a session that ended before it was placed). */
  drop(): void {
    this.#close();
    try {
      Deno.removeSync(this.path);
    } catch { /* already placed or removed */ }
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.file?.close();
    } catch { /* closed */ }
  }
}
