/**
 * Sends one accepted file (PROTOCOL.md §5.6–5.9, §7): FILE_START when the
 * receiver offered a resume, its DATA, then FILE_END with its length and
 * digest, or FILE_ABORT when it could not be read whole and unchanged. A
 * file that fits one frame is read straight into the outgoing buffer; a
 * larger one (or standard input) streams in frames, hashing as it goes, and
 * resumes where the receiver's held prefix is provably its own.
 */
import { type Digest, digestHex, type Hasher, PrefixHash } from "../protocol/digests.ts";
import { encodeFileAbort, encodeFileEnd, encodeFileStart, FrameType } from "../protocol/frame.ts";
import { MAX_FRAME_PAYLOAD } from "../protocol/limits.ts";
import { osCode } from "../os_errors.ts";
import { isConnectionError } from "../transport/connection_errors.ts";
import type { FrameWriter } from "../transport/frame_io.ts";
import { loadNativeReader } from "../native/native_read.ts";
import { SmallReads } from "./small_reads.ts";
import type { Numbered, SendEvent } from "./send_types.ts";
import type { LocalEntry } from "./walk.ts";

/** Where a file's bytes come from when it has no path (standard input, or a test's source). */
export interface Readable {
  read(p: Uint8Array): Promise<number | null>;
}

export class FileSender {
  /** Small files' reads through the C library (null until the first, or where it is missing). */
  #reads: SmallReads | null = null;

  constructor(
    readonly writer: FrameWriter,
    /** The session's digest (WELCOME's). */
    readonly digest: Digest,
    readonly emit: (event: SendEvent) => void,
    /** Whether the session has already failed (a read error is then not the file's fault). */
    readonly failed: () => boolean = () => false,
    /** What an entry without a source reads. */
    readonly stdin: Readable = Deno.stdin,
  ) {}

  /**
   * Sends one file's bytes, then FILE_END, or FILE_ABORT if it could not be
   * read whole. With a resume offer, it first hashes the offered prefix and
   * sends only the rest if the receiver's prefix digest matches.
   */
  send(entry: Numbered, offer: number, prefix: string | undefined): Promise<void> | undefined {
    // Not async itself: a small file that need not wait is sent in place (no promise), and
    // returns nothing.
    if (entry.kind === "text") return this.#sendText(entry, entry.text!);
    if (entry.source !== null && entry.size !== null && entry.size <= MAX_FRAME_PAYLOAD) {
      return offer > 0
        ? this.#declineThenSendSmall(entry, entry.source, entry.size)
        : this.#sendSmall(entry, entry.source, entry.size);
    }
    return this.#stream(entry, offer, prefix);
  }

  /** Not worth resuming: declines the offer, and sends it whole. */
  async #declineThenSendSmall(entry: Numbered, source: string, size: number): Promise<void> {
    await this.writer.frame(FrameType.FILE_START, encodeFileStart({ id: entry.id, offset: 0 }));
    return await this.#sendSmall(entry, source, size);
  }

  /** Closes what the reads keep open (the last small file's folder). */
  close(): void {
    this.#reads?.close();
  }

  #loadReads(): SmallReads | null {
    const native = loadNativeReader();
    return native === null ? null : (this.#reads = new SmallReads(native));
  }

  /** A text (PROTOCOL.md §5.15): its bytes in one DATA frame (at most 64 KiB), then FILE_END. */
  async #sendText(entry: Numbered, text: Uint8Array): Promise<void> {
    if (text.length > 0) await this.writer.frame(FrameType.DATA, text);
    await this.writer.frame(
      FrameType.FILE_END,
      encodeFileEnd({ id: entry.id, length: text.length, digest: this.digest.of(text) }),
    );
  }

  #abort(entry: Numbered, reason: string): Promise<void> {
    return this.writer.frame(FrameType.FILE_ABORT, encodeFileAbort({ id: entry.id, reason }));
  }

  /**
   * A file of one frame at most (never offered a resume): read straight into
   * the outgoing buffer with in-place calls (short reads from the page cache
   * are cheaper than a thread-pool hop each), through the C library on Linux
   * (small_reads.ts), then framed and hashed.
   */
  #sendSmall(entry: Numbered, source: string, size: number): Promise<void> | undefined {
    const room = this.writer.reserveExactlyNow(size);
    return room === null ? this.#sendSmallOnceRoom(entry, source, size) : this.#sendSmallInto(
      entry,
      source,
      size,
      room,
    );
  }

  /** `#sendSmall` once the outgoing buffer has been handed off for room. */
  async #sendSmallOnceRoom(entry: Numbered, source: string, size: number): Promise<void> {
    const room = await this.writer.reserveExactly(size);
    await this.#sendSmallInto(entry, source, size, room);
  }

  /** `#sendSmall` into `room`, reserved for its DATA frame. */
  #sendSmallInto(
    entry: Numbered,
    source: string,
    size: number,
    room: Uint8Array,
  ): Promise<void> | undefined {
    let reason: string | null = null;
    let file: Deno.FsFile | null = null;
    const native = this.#reads ?? this.#loadReads();
    try {
      if (native !== null) {
        reason = native.readWhole(source, room, entry);
      } else {
        file = Deno.openSync(source, { read: true });
        for (let done = 0; reason === null && done < size;) {
          const n = file.readSync(room.subarray(done));
          if (n === null) reason = "it shrank while being sent";
          else done += n;
        }
        // One check after the read covers both a change since the listing and one during it.
        if (reason === null && !unchanged(file.statSync(), entry)) {
          reason = "it changed after it was listed";
        }
      }
    } catch (err) {
      reason = `cannot read it: ${describeReadError(err)}`;
    } finally {
      file?.close();
    }
    if (reason !== null) return this.#abort(entry, reason);
    this.emit({ type: "file-start", path: entry.path, size, resumed: 0 });
    const digest = this.digest.of(room);
    if (this.digest.name === "sha256") entry.sha256 = digestHex(digest);
    if (size > 0) {
      this.writer.commit(FrameType.DATA, size);
      this.emit({ type: "progress", bytes: size });
    }
    const end = encodeFileEnd({ id: entry.id, length: size, digest });
    return this.writer.frameNow(FrameType.FILE_END, end)
      ? undefined
      : this.writer.frame(FrameType.FILE_END, end);
  }

  /** A larger file, or standard input: in frames, from the resume point if the offer holds. */
  async #stream(entry: Numbered, offer: number, prefix: string | undefined): Promise<void> {
    let file: Readable;
    let opened: Deno.FsFile | null = null;
    if (entry.source === null) {
      file = this.stdin;
    } else {
      try {
        opened = await Deno.open(entry.source, { read: true });
        if (!unchanged(await opened.stat(), entry)) {
          opened.close();
          return await this.#abort(entry, "it changed after it was listed");
        }
      } catch (err) {
        opened?.close();
        return await this.#abort(entry, `cannot read it: ${describeReadError(err)}`);
      }
      file = opened;
    }
    let hash = this.digest.hasher();
    let sent = 0;
    try {
      if (offer > 0 && opened) {
        const resumed = await resumePoint(opened, this.digest, offer, prefix!);
        if (resumed === null) await opened.seek(0, Deno.SeekMode.Start);
        else hash = resumed.hash;
        sent = resumed?.offset ?? 0;
        await this.writer.frame(
          FrameType.FILE_START,
          encodeFileStart({ id: entry.id, offset: sent }),
        );
        entry.resumed = sent;
      }
      this.emit({
        type: "file-start",
        path: entry.path,
        size: entry.size,
        resumed: entry.resumed ?? 0,
      });
      for (;;) {
        const want = entry.size === null
          ? MAX_FRAME_PAYLOAD
          : Math.min(MAX_FRAME_PAYLOAD, entry.size - sent);
        if (want === 0) break;
        const room = await this.writer.reserve(want);
        const n = await file.read(room);
        if (n === null) {
          if (entry.size !== null) return await this.#abort(entry, "it shrank while being sent");
          break;
        }
        hash.update(room.subarray(0, n));
        this.writer.commit(FrameType.DATA, n);
        sent += n;
        this.emit({ type: "progress", bytes: n });
      }
      if (opened && !unchanged(await opened.stat(), entry)) {
        return await this.#abort(entry, "it changed while being sent");
      }
    } catch (err) {
      if (this.failed() || isConnectionError(err) || !isReadError(err)) throw err;
      return await this.#abort(entry, `cannot read it: ${describeReadError(err)}`);
    } finally {
      opened?.close();
    }
    if (entry.size === null) entry.size = sent;
    const digest = hash.digest();
    if (this.digest.name === "sha256") entry.sha256 = digestHex(digest);
    await this.writer.frame(
      FrameType.FILE_END,
      encodeFileEnd({ id: entry.id, length: sent, digest }),
    );
  }
}

/**
 * Hashes the first `offer` bytes of `file`; if their SHA-256 is the
 * receiver's `prefix`, returns `offer` and the session digest's hasher over
 * them (to go on over the rest), else null (send it all). The prefix is
 * always SHA-256 (PROTOCOL.md §7): the held bytes may come from another
 * sender, and only a cryptographic digest proves they are ours.
 */
async function resumePoint(
  file: Deno.FsFile,
  digest: Digest,
  offer: number,
  prefix: string,
): Promise<{ offset: number; hash: Hasher } | null> {
  const hashing = new PrefixHash(digest);
  const buf = new Uint8Array(1024 * 1024);
  let done = 0;
  while (done < offer) {
    const n = await file.read(buf.subarray(0, Math.min(buf.length, offer - done)));
    if (n === null) return null;
    hashing.update(buf.subarray(0, n));
    done += n;
  }
  const { hash, proof } = hashing.finish();
  return proof === prefix ? { offset: offer, hash } : null;
}

/** The file is as listed: the same size and modification time. */
function unchanged(info: Deno.FileInfo, entry: LocalEntry): boolean {
  return info.size === entry.size && (info.mtime?.getTime() ?? entry.mtime) === entry.mtime;
}

/** A local file could not be read (it is refused, not the session): by Deno's class or errno name. */
function isReadError(err: unknown): boolean {
  const code = osCode(err);
  return err instanceof Deno.errors.PermissionDenied || err instanceof Deno.errors.NotFound ||
    err instanceof Deno.errors.IsADirectory || code === "EIO" || code === "EISDIR";
}

function describeReadError(err: unknown): string {
  if (err instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (err instanceof Deno.errors.NotFound) return "it vanished";
  return err instanceof Error ? err.message : String(err);
}
