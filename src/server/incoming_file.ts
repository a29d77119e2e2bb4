/**
 * One file being received: written to a staging file and hashed as the
 * bytes arrive, then checked (length, digest), given its metadata, fsynced
 * and only then placed under its final name.
 *
 * A file with a known size is staged as a resumable partial (see
 * Inbox.claimPartial): if the session breaks off, its bytes stay in
 * DIR/.ferry/partial for a later session of the same transfer to continue.
 * Anything else is staged in DIR/.ferry/tmp and removed on failure.
 */
import type { Digest, Hasher } from "../protocol/digests.ts";
import { equalBytes } from "../protocol/bytes.ts";
import type { Entry } from "../protocol/messages.ts";
import type { FileEnd } from "../protocol/frame.ts";
import {
  type ConflictPolicy,
  type HeldPartial,
  Refusal,
  storageRefusal,
  WRITE_PIECE_BYTES,
} from "./inbox.ts";
import type { Folders } from "./folders.ts";

/** Writes all of `data` to `file`, at most `piece` bytes per call. */
export async function writeInPieces(
  file: { write(p: Uint8Array): Promise<number> },
  data: Uint8Array,
  piece = WRITE_PIECE_BYTES,
): Promise<void> {
  for (let at = 0; at < data.length;) {
    const n = await file.write(data.subarray(at, Math.min(data.length, at + piece)));
    if (n === 0) throw new Error("a write wrote nothing (os error 5)");
    at += n;
  }
}

/** Writes all of `data` to `file` in place (synchronously), at most `piece` bytes per call, through short writes. */
export function writeAllSync(
  file: { writeSync(p: Uint8Array): number },
  data: Uint8Array,
  piece = Infinity,
): void {
  for (let at = 0; at < data.length;) {
    const n = file.writeSync(data.subarray(at, at + piece));
    if (n === 0) throw new Error("a write wrote nothing (os error 5)");
    at += n;
  }
}

/** Permission bits a receiver keeps: no setuid, setgid, sticky, group/other write (the owner can always read and write). */
export const KEPT_MODE_BITS = 0o755;

/** Where a file resumes: the bytes already held, the hash over them, and their SHA-256 (hex). */
export interface Resume {
  offset: number;
  hash: Hasher;
  prefix: string;
}

/** Thrown for data that arrived damaged: the sender may send the file again. */
export class DamagedData extends Refusal {}

export class IncomingFile {
  /** Bytes of the file held so far, including resumed ones. */
  received: number;
  /** Bytes that were already held when this session started on the file. */
  readonly resumed: number;
  #hash: Hasher;
  #closed = false;
  /** The write in flight, if any. */
  #writing: Promise<void> | null = null;

  private constructor(
    readonly entry: Entry,
    readonly dir: string,
    readonly name: string,
    readonly path: string,
    readonly file: Deno.FsFile,
    readonly partial: HeldPartial | null,
    hash: Hasher,
    resumed: number,
    /** The most one write() takes (Inbox.writePiece). */
    readonly piece: number,
  ) {
    this.#hash = hash;
    this.received = resumed;
    this.resumed = resumed;
  }

  /**
   * Opens the staging file: the claimed partial (continuing at `resume`, or
   * from scratch), or a fresh temp file when there is no partial. Deno's
   * calls open it by path, so before anything is written to it (or cut from
   * it) `folders` checks that it is the file at its name in ferry's staging
   * folder, reached without a link: one that went elsewhere is refused.
   */
  static async create(
    folders: Folders,
    entry: Entry,
    dir: string,
    name: string,
    digest: Digest,
    partial: HeldPartial | null,
    resume: Resume | null,
  ): Promise<IncomingFile> {
    const { inbox } = folders;
    try {
      if (partial === null) {
        const temp = await inbox.createTemp();
        await checkStaged(folders, temp.path, temp.file, true);
        return new IncomingFile(
          entry,
          dir,
          name,
          temp.path,
          temp.file,
          null,
          digest.hasher(),
          0,
          inbox.writePiece,
        );
      }
      const { file, created } = await openPartial(partial.path);
      await checkStaged(folders, partial.path, file, created);
      if (resume === null) {
        await file.truncate(0);
      } else {
        await file.truncate(resume.offset);
        await file.seek(resume.offset, Deno.SeekMode.Start);
      }
      const hash = resume?.hash ?? digest.hasher();
      return new IncomingFile(
        entry,
        dir,
        name,
        partial.path,
        file,
        partial,
        hash,
        resume?.offset ?? 0,
        inbox.writePiece,
      );
    } catch (err) {
      throw storageRefusal(err);
    }
  }

  /**
   * Appends `chunk`; refuses data beyond the declared size or the size cap.
   * On disk the write goes on in the background, straight from `chunk` (a
   * view into the frame reader's buffer, kept valid with `hold()` until the
   * write is done), while the next frame is read and this one hashed; at
   * most one is in flight, and its error surfaces at the next write or at
   * `finish`. In memory (tmpfs, ramfs: no piece limit) a write is a copy,
   * and it runs in place: cheaper than the hop to the thread pool and back
   * (Inbox.writePiece says how much).
   */
  async write(chunk: Uint8Array, maxSize: number, hold: () => () => void): Promise<void> {
    const limit = this.entry.size ?? maxSize;
    if (this.received + chunk.length > limit) {
      throw this.entry.size === null
        ? new Refusal(`larger than the receiver's limit of ${maxSize} bytes`)
        : new DamagedData(`the sender sent more than the ${this.entry.size} bytes it announced`);
    }
    await this.#settle();
    if (this.piece === Infinity) {
      try {
        writeAllSync(this.file, chunk);
      } catch (err) {
        throw storageRefusal(err);
      }
      this.#hash.update(chunk);
      this.received += chunk.length;
      return;
    }
    const release = hold();
    const writing = writeInPieces(this.file, chunk, this.piece).finally(release);
    writing.catch(() => {}); // observed by the next #settle()
    this.#writing = writing;
    this.#hash.update(chunk); // on this thread, while the write runs on another
    this.received += chunk.length;
  }

  /** Waits for the write in flight; a storage error becomes a per-file refusal. */
  async #settle(): Promise<void> {
    const writing = this.#writing;
    if (writing === null) return;
    this.#writing = null;
    await writing.catch((err) => {
      throw storageRefusal(err);
    });
  }

  /**
   * Checks the end against what arrived, applies mtime and mode, fsyncs,
   * and places the file in its folder (through `folders`, which checks
   * the folder again). Returns the final name, or null if skipped.
   */
  async finish(
    end: FileEnd,
    folders: Folders,
    policy: ConflictPolicy,
  ): Promise<string | null> {
    const { entry } = this;
    await this.#settle();
    if (entry.size !== null && this.received !== entry.size) {
      throw new DamagedData(`received ${this.received} bytes, but ${entry.size} were announced`);
    }
    if (end.length !== this.received) {
      throw new DamagedData(
        `received ${this.received} bytes, but the sender says it sent ${end.length}`,
      );
    }
    const digest = this.#hash.digest();
    if (!equalBytes(digest, end.digest)) {
      throw new DamagedData("digest mismatch: the data was altered in transit");
    }
    try {
      if (Deno.build.os !== "windows") {
        await Deno.chmod(this.path, (entry.mode & KEPT_MODE_BITS) | 0o600);
      }
      const mtime = new Date(entry.mtime);
      await this.file.utime(mtime, mtime);
      await this.file.sync();
    } catch (err) {
      throw storageRefusal(err);
    }
    this.#close();
    return await folders.place(this.path, this.dir, this.name, policy);
  }

  /**
   * Drops the staging file, or, with `keep`, leaves a partial with data in
   * place (synced) for a later session to resume.
   */
  async discard(keep = false): Promise<void> {
    await this.#settle().catch(() => {});
    if (keep && this.partial !== null && this.received > 0 && !this.#closed) {
      await this.file.sync().catch(() => {});
      this.#close();
      return;
    }
    this.#close();
    await Deno.remove(this.path).catch(() => {});
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.file.close();
  }
}

/**
 * Opens a partial for writing: a new one (O_EXCL, which never follows a
 * link), or the one there if it is a plain file. Not truncated: that waits
 * for `checkStaged`.
 */
async function openPartial(path: string): Promise<{ file: Deno.FsFile; created: boolean }> {
  try {
    return {
      file: await Deno.open(path, { write: true, createNew: true, mode: 0o600 }),
      created: true,
    };
  } catch (err) {
    if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
  }
  if (!(await Deno.lstat(path)).isFile) {
    throw new Refusal("ferry's staging folder holds something else than a partial file");
  }
  return { file: await Deno.open(path, { write: true }), created: false };
}

/**
 * Closes and refuses `file`, opened at `path`, unless it is the file at its
 * name in ferry's staging folder; one that this open `created` elsewhere is
 * removed again.
 */
async function checkStaged(
  folders: Folders,
  path: string,
  file: Deno.FsFile,
  created: boolean,
): Promise<void> {
  try {
    folders.checkStaged(path, await file.stat());
  } catch (err) {
    file.close();
    if (created) await Deno.remove(path).catch(() => {});
    throw err;
  }
}
