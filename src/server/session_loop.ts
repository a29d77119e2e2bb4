/**
 * A session after WELCOME: the sender's frames, in the order they arrive, on one task, so the
 * session holds at most one open file. Plans go out as soon as a batch is checked;
 * acknowledgements are collected and sent, after the directories they touch are fsynced,
 * whenever the sender has nothing more queued for us (or enough have piled up), so
 * "acknowledged" always means "verified and durable".
 */
import { ProtocolError } from "../protocol/errors.ts";
import {
  decodeFileAbort,
  decodeFileEnd,
  decodeFileStart,
  type FileEnd,
  FrameType,
} from "../protocol/frame.ts";
import { ANNOUNCE_WINDOW } from "../protocol/limits.ts";
import type { Digest } from "../protocol/digests.ts";
import {
  type Ack,
  checkEntry,
  type Decision,
  decodeAnnounce,
  encodeJson,
  type Entry,
  entryId,
} from "../protocol/messages.ts";
import { closeGracefully } from "../transport/byte_stream.ts";
import type { FramedLink } from "../transport/framed_link.ts";
import type { Folders } from "./folders.ts";
import { type Greeting, peerError } from "./handshake.ts";
import {
  childPath,
  type ConflictPolicy,
  type Inbox,
  MAX_RENAME_TRIES,
  numberedName,
  type Partial,
  placedSince,
  Refusal,
  type TransferStart,
} from "./inbox.ts";
import { DamagedData, IncomingFile, KEPT_MODE_BITS, type Resume } from "./incoming_file.ts";
import type { Report } from "./server_events.ts";
import type { ServerLimits } from "./server_limits.ts";
import { SMALL_FILE_MAX, SmallFile, StagedFile } from "./small_file.ts";
import type { Tally } from "./tally.ts";

export interface SessionLoopOptions {
  session: number;
  report: Report;
  link: FramedLink;
  inbox: Inbox;
  /** DIR's folders as this session sees them (folders.ts). */
  folders: Folders;
  greeting: Greeting;
  onConflict: ConflictPolicy;
  limits: ServerLimits;
  tally: Tally;
  /** Throws once the session was closed from outside. */
  stopIfClosed(): void;
}

/** An accepted entry waiting for its turn in the data stream. */
interface Queued {
  entry: Entry;
  /** Absolute directory: the parent for a file, the directory itself for a dir. */
  dir: string;
  name: string;
  /** The claimed partial slot (resumable files only). */
  partial: Partial | null;
  /** The resume offer made in the plan, if any. */
  offer: Resume | null;
  /** Bytes reserved against the free space. */
  reserved: number;
}

/** Longest absolute path the receiving OS takes (PATH_MAX less its NUL). */
const PLATFORM_PATH_MAX = Deno.build.os === "darwin" ? 1023 : 4095;
const encoder = new TextEncoder();

/** A file that ended: the name it was stored under (null: skipped), the bytes it took. */
interface Finished {
  name: string | null;
  bytes: number;
  resumed: number;
}

/** Small files staged (fsyncs in flight, files open) before they are placed. */
const MAX_STAGED = 64;

/** Send acknowledgements once this many are waiting, even if more data is queued. */
const ACK_FLUSH_COUNT = 512;
const ACK_FLUSH_BYTES = 256 * 1024;

export class SessionLoop {
  /** The digest HELLO and WELCOME agreed on. */
  #digest: Digest;
  #resumable: boolean;
  /** This session continues an interrupted transfer: files it already stored are "have". */
  #resuming: boolean;
  /** When the resumed transfer first started, or null. */
  #resumedSince: TransferStart | null;
  /** Bytes of streamed (size unknown) files so far, counted against --max-total. */
  #streamed = 0;
  #nextBatch = 0;
  #lastId = -1;
  #entries = 0;
  #announcedBytes = 0;
  #queue: Queued[] = [];
  #queueHead = 0;
  #current: IncomingFile | null = null;
  /** The head file's data, when it takes the short path. */
  #small = new SmallFile();
  /**
   * Small files ended and waiting to be placed and acknowledged, in order: verified and written,
   * their fsyncs under way (`file`), or failed (`failure`, no file).
   */
  #staged: { head: Queued; file: StagedFile | null; failure: Refusal | null }[] = [];
  /** The head file's FILE_START arrived (or none was needed). */
  #started = false;
  /** Set when the current file failed; its remaining data is dropped. */
  #currentFailed: Refusal | null = null;
  #acks: Ack[] = [];
  #ackBytes = 0;
  /** Directories this session created, until their own entry sets their metadata. */
  #created = new Set<string>();
  /** The sender's totals as last told (ANNOUNCE `totals`). */
  #totals: { files: number; bytes: number | null } | null = null;

  constructor(readonly opts: SessionLoopOptions) {
    const { greeting } = opts;
    this.#digest = greeting.digest;
    this.#resumable = greeting.resumable;
    this.#resumedSince = greeting.resumedSince;
    this.#resuming = greeting.resumedSince !== null;
  }

  /** Lets go of what the loop holds: its file (kept as a partial if cut off), claims, reservations. */
  async release(clean: boolean): Promise<void> {
    if (this.#current) await this.#current.discard(!clean && this.#currentFailed === null);
    this.#current = null;
    for (const { file } of this.#staged) file?.drop();
    this.#staged = [];
    for (let i = this.#queueHead; i < this.#queue.length; i++) this.#releaseItem(this.#queue[i]);
    this.#queue = [];
    this.#queueHead = 0;
  }

  #releaseItem(item: Queued): void {
    if (item.partial) this.opts.inbox.releasePartial(item.partial);
    this.opts.inbox.reserved -= item.reserved;
    item.reserved = 0;
  }

  /** Routes the sender's frames until DONE has been answered with BYE. */
  async run(): Promise<void> {
    for (;;) {
      this.opts.stopIfClosed();
      if (this.opts.link.reader.buffered === 0) await this.#flushAcks();
      const frame = await this.opts.link.reader.next();
      if (frame === null) {
        throw new ProtocolError("truncated", "the sender closed the connection before DONE");
      }
      switch (frame.type) {
        case FrameType.ANNOUNCE:
          await this.#announce(frame.payload);
          break;
        case FrameType.FILE_START:
          await this.#start(frame.payload);
          break;
        case FrameType.DATA:
          await this.#data(frame.payload);
          break;
        case FrameType.FILE_END: {
          const end = decodeFileEnd(frame.payload);
          await this.#endFile(this.#head("FILE_END", end.id), end);
          break;
        }
        case FrameType.FILE_ABORT: {
          const abort = decodeFileAbort(frame.payload);
          const head = this.#head("FILE_ABORT", abort.id);
          this.#currentFailed ??= new Refusal(`the sender gave up on it: ${abort.reason}`);
          await this.#endFile(head, null);
          break;
        }
        case FrameType.DONE:
          await this.#advance();
          if (this.#queueHead < this.#queue.length) {
            throw new ProtocolError("bad-sequence", "DONE while announced files are unsent");
          }
          await this.#flushAcks(false);
          await this.opts.link.writer.frame(
            FrameType.BYE,
            encodeJson({
              files: this.opts.tally.files,
              bytes: this.opts.tally.bytes,
              failed: this.opts.tally.failed,
            }),
          );
          await this.opts.link.writer.flush();
          await closeGracefully(this.opts.link.stream);
          return;
        case FrameType.ERROR:
          peerError(frame.payload);
          break;
        default:
          throw new ProtocolError(
            "unexpected-frame",
            `frame 0x${frame.type.toString(16)} is not expected from a sender`,
          );
      }
    }
  }

  /** Checks one ANNOUNCE batch and answers with its PLAN. */
  async #announce(payload: Uint8Array): Promise<void> {
    const { batch, entries, totals } = decodeAnnounce(payload);
    const { limits } = this.opts;
    if (batch !== this.#nextBatch) {
      throw new ProtocolError("bad-sequence", `expected batch ${this.#nextBatch}, got ${batch}`);
    }
    this.#nextBatch++;
    if (
      totals !== undefined &&
      (totals.files !== this.#totals?.files || totals.bytes !== this.#totals?.bytes)
    ) {
      this.#totals = totals;
      this.opts.report({ type: "totals", session: this.opts.session, ...totals });
    }
    if (entries.length > limits.maxBatchEntries) {
      throw new ProtocolError(
        "too-many-entries",
        `ANNOUNCE has ${entries.length} entries; this receiver takes ${limits.maxBatchEntries}`,
      );
    }
    const pending = this.#queue.length - this.#queueHead;
    if (pending + entries.length > (ANNOUNCE_WINDOW + 1) * limits.maxBatchEntries) {
      throw new ProtocolError("too-many-entries", "too many entries announced ahead of their data");
    }
    const free = await this.opts.inbox.freeBytes();
    const decisions: Decision[] = [];
    for (const raw of entries) {
      const id = entryId(raw);
      if (id <= this.#lastId) {
        throw new ProtocolError("bad-sequence", `entry id ${id} does not increase`);
      }
      this.#lastId = id;
      this.#resent(raw);
      const decision = await this.#decide(raw, free);
      decisions.push(decision);
      if (decision.action === "skip" || decision.action === "refuse") {
        const path = typeof (raw as { path?: unknown }).path === "string"
          ? (raw as { path: string }).path
          : "(no name)";
        this.opts.report({
          type: "refused",
          session: this.opts.session,
          path,
          reason: `${decision.action === "skip" ? "skipped" : "refused"}: ${decision.reason}`,
        });
        if (decision.action === "refuse") this.opts.tally.fail();
      }
    }
    await this.opts.link.writer.frame(FrameType.PLAN, encodeJson({ batch, decisions }));
    await this.opts.link.writer.flush();
    await this.#advance();
  }

  /**
   * A file that arrived damaged stops counting as failed once the sender announces it again
   * (the same path, size and mtime): the resend's own outcome counts instead (PROTOCOL.md §5.12).
   */
  #resent(raw: unknown): void {
    if (!this.opts.tally.awaitsResend) return;
    const check = checkEntry(raw);
    if (check.ok) this.opts.tally.announced(check.entry);
  }

  async #decide(raw: unknown, free: number | null): Promise<Decision> {
    const check = checkEntry(raw);
    if (!check.ok) return { id: check.id, action: "refuse", reason: check.reason };
    const { entry } = check;
    const { inbox, onConflict, limits } = this.opts;
    const refuse = (reason: string): Decision => ({ id: entry.id, action: "refuse", reason });
    if (++this.#entries > limits.maxEntries) {
      return refuse(`this receiver takes at most ${limits.maxEntries} entries per session`);
    }
    try {
      const parts = inbox.parse(entry.path, limits);
      if (entry.kind === "dir") {
        const dir = await this.opts.folders.ensure(parts, this.#created);
        this.#enqueue({ entry, dir, name: "", partial: null, offer: null, reserved: 0 });
        return { id: entry.id, action: "accept" };
      }
      if (entry.size !== null && entry.size > limits.maxSize) {
        return refuse(`larger than the receiver's limit of ${limits.maxSize} bytes`);
      }
      if (this.#announcedBytes + (entry.size ?? 0) > limits.maxTotal) {
        return refuse(`over the receiver's limit of ${limits.maxTotal} bytes per session`);
      }
      const dir = await this.opts.folders.ensure(parts.slice(0, -1), this.#created);
      const name = parts[parts.length - 1];
      const target = childPath(dir, name);
      // No UTF-16 unit takes more than 3 UTF-8 bytes: most paths need no encoding to check.
      if (
        target.length * 3 > PLATFORM_PATH_MAX && encoder.encode(target).length > PLATFORM_PATH_MAX
      ) {
        return refuse("name too long for the receiver's file system");
      }
      // Under "rename" a name in use is found when placing the file; look now only if it matters.
      const existing = onConflict === "rename" && !this.#resuming ? "none" : inbox.existing(target);
      const stored = existing === "file" && this.#resuming
        ? this.#storedHere(dir, name, entry)
        : null;
      if (stored !== null) {
        this.opts.tally.already++;
        this.opts.report({
          type: "already",
          session: this.opts.session,
          path: entry.path,
          name: [...parts.slice(0, -1), stored].join("/"),
          bytes: entry.size ?? 0,
        });
        return { id: entry.id, action: "have" };
      }
      if (existing !== "none" && onConflict !== "rename") {
        // Not taken here: what an interrupted run of it left in a partial is not wanted either.
        if (onConflict !== "overwrite") await this.#dropPartial(entry);
        if (onConflict === "skip") {
          return { id: entry.id, action: "skip", reason: "already exists" };
        }
        if (onConflict === "fail") return refuse("already exists on the receiver");
        if (existing === "dir") return refuse("a directory is in the way");
      }
      return await this.#accept(entry, dir, name, free);
    } catch (err) {
      if (err instanceof Refusal) return refuse(err.message);
      throw err;
    }
  }

  /**
   * In a resuming session, the name under which this transfer already stored
   * `entry` in `dir` (PROTOCOL.md §7): `name`, or under "rename" one of its
   * numbered copies up to the first free one, holding a regular file of the
   * announced size and mtime that this transfer put there (a file that was
   * there before it started is not one of its copies). Null if none.
   */
  #storedHere(dir: string, name: string, entry: Entry): string | null {
    const start = this.#resumedSince!;
    const tries = this.opts.onConflict === "rename" ? MAX_RENAME_TRIES : 0;
    for (let n = 0; n <= tries; n++) {
      const candidate = n === 0 ? name : numberedName(name, n);
      let info: Deno.FileInfo;
      try {
        info = Deno.lstatSync(childPath(dir, candidate));
      } catch {
        return null; // the first free name: no copy was placed beyond it
      }
      if (sameFile(info, entry) && placedSince(info, start)) return candidate;
    }
    return null;
  }

  /** Deletes the partial held for a file of a resume-capable sender that will not be stored. */
  async #dropPartial(entry: Entry): Promise<void> {
    if (this.#resumable && entry.size !== null && entry.size > SMALL_FILE_MAX) {
      await this.opts.inbox.dropPartial(entry);
    }
  }

  /** Accepts a file: claims its partial slot, makes a resume offer if data is held, reserves space. */
  async #accept(entry: Entry, dir: string, name: string, free: number | null): Promise<Decision> {
    const { inbox } = this.opts;
    // Only files of several frames are worth resuming; a small file is sent again whole.
    const partial = this.#resumable && entry.size !== null && entry.size > SMALL_FILE_MAX
      ? inbox.claimPartial(entry)
      : null;
    const held = partial ? await inbox.readPartial(partial, this.#digest!, entry.size!) : null;
    const offer = held ? { offset: held.size, hash: held.hash, prefix: held.prefix } : null;
    const need = (entry.size ?? 0) - (offer?.offset ?? 0);
    if (free !== null && need > free - inbox.reserved) {
      if (partial) inbox.releasePartial(partial);
      return {
        id: entry.id,
        action: "refuse",
        reason: `not enough free space on the receiver (needs ${need} bytes, ${
          Math.max(0, free - inbox.reserved)
        } free)`,
      };
    }
    inbox.reserved += need;
    this.#announcedBytes += entry.size ?? 0;
    this.#enqueue({ entry, dir, name, partial, offer, reserved: need });
    if (offer === null) return { id: entry.id, action: "accept", offset: 0 };
    return { id: entry.id, action: "accept", offset: offer.offset, prefix: offer.prefix };
  }

  #enqueue(item: Queued): void {
    if (this.#queueHead > 1024 && this.#queueHead * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#queueHead);
      this.#queueHead = 0;
    }
    this.#queue.push(item);
  }

  /**
   * Applies directory metadata for directories at the head of the queue
   * (they come after their contents), so the next head is a file, if any.
   * Only directories this transfer created get the sender's mode and mtime:
   * those made in this session, or, when resuming, in an earlier session
   * of the same transfer. An existing directory merged into is left as is.
   */
  async #advance(): Promise<void> {
    while (this.#queueHead < this.#queue.length) {
      const item = this.#queue[this.#queueHead];
      if (item.entry.kind !== "dir") return;
      this.#queueHead++;
      // Its files must be in place first: placing one changes the folder's mtime.
      if (this.#staged.length > 0) await this.#placeStaged();
      if (!this.#created.delete(item.dir) && !(await this.#bornInTransfer(item.dir))) continue;
      try {
        const mode = (item.entry.mode & KEPT_MODE_BITS) | 0o700;
        await this.opts.folders.setMetadata(item.dir, mode, item.entry.mtime);
      } catch { /* metadata of a directory is best effort */ }
    }
  }

  /** Whether `dir` was created by an earlier session of the transfer this one resumes. */
  async #bornInTransfer(dir: string): Promise<boolean> {
    if (this.#resumedSince === null) return false;
    const born = (await Deno.lstat(dir).catch(() => null))?.birthtime?.getTime();
    return born !== undefined && born >= this.#resumedSince.since - 1000;
  }

  /** The file whose data comes next; `id`, when given, must be its id. */
  #head(what: string, id?: number): Queued {
    const item = this.#queue[this.#queueHead];
    if (!item) throw new ProtocolError("bad-sequence", `${what} but no announced file is pending`);
    if (id !== undefined && id !== item.entry.id) {
      throw new ProtocolError("bad-sequence", `${what} for id ${id}, expected id ${item.entry.id}`);
    }
    return item;
  }

  /** FILE_START: the sender takes up (offset = offer) or declines (0) the resume offer. */
  async #start(payload: Uint8Array): Promise<void> {
    const start = decodeFileStart(payload);
    const head = this.#head("FILE_START", start.id);
    if (head.offer === null || this.#started) {
      throw new ProtocolError(
        "bad-sequence",
        `FILE_START for id ${start.id} without a resume offer`,
      );
    }
    if (start.offset !== 0 && start.offset !== head.offer.offset) {
      throw new ProtocolError("bad-message", `FILE_START offset ${start.offset} was not offered`);
    }
    this.#started = true;
    await this.#open(head, start.offset === 0 ? null : head.offer);
  }

  /** Opens the head file's staging file, unless it failed already. */
  async #open(head: Queued, resume: Resume | null): Promise<void> {
    this.opts.report({
      type: "file-start",
      session: this.opts.session,
      path: head.entry.path,
      size: head.entry.size,
      resumed: resume?.offset ?? 0,
    });
    try {
      this.#current = await IncomingFile.create(
        this.opts.folders,
        head.entry,
        head.dir,
        head.name,
        this.#digest!,
        head.partial,
        resume,
      );
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      this.#currentFailed = err;
    }
  }

  /** Makes sure the head file is open (the first DATA or an empty file's FILE_END). */
  async #ensureOpen(head: Queued, what: string): Promise<void> {
    if (this.#current !== null || this.#currentFailed !== null) return;
    if (head.offer !== null && !this.#started) {
      throw new ProtocolError(
        "bad-sequence",
        `${what} before FILE_START answered the resume offer`,
      );
    }
    this.#started = true;
    await this.#open(head, null);
  }

  /** Whether the head file takes the short path (small_file.ts): size known, one frame, no resume. */
  #isSmall(head: Queued): boolean {
    return head.entry.size !== null && head.entry.size <= SMALL_FILE_MAX && head.offer === null;
  }

  async #data(chunk: Uint8Array): Promise<void> {
    const head = this.#head("DATA");
    if (head.entry.kind !== "file") throw new ProtocolError("bad-sequence", "DATA for a directory");
    if (this.#isSmall(head)) {
      if (this.#currentFailed !== null) return;
      if (this.#small.entry !== head.entry) this.#beginSmall(head);
      try {
        this.#small.add(chunk);
        this.opts.report({ type: "progress", session: this.opts.session, bytes: chunk.length });
      } catch (err) {
        if (!(err instanceof Refusal)) throw err;
        this.#currentFailed = err;
      }
      return;
    }
    await this.#ensureOpen(head, "DATA");
    if (this.#currentFailed !== null) return;
    try {
      const { maxSize, maxTotal } = this.opts.limits;
      if (head.entry.size === null) {
        // A streamed file's size is known only as it arrives: hold it to the session total too.
        const left = maxTotal - this.#announcedBytes - this.#streamed;
        if (chunk.length > left) {
          throw new Refusal(`over the receiver's limit of ${maxTotal} bytes per session`);
        }
        this.#streamed += chunk.length;
      }
      await this.#current!.write(chunk, maxSize, () => this.opts.link.reader.hold());
      this.opts.report({ type: "progress", session: this.opts.session, bytes: chunk.length });
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      this.#currentFailed = err;
      await this.#current?.discard();
      this.#current = null;
    }
  }

  #beginSmall(head: Queued): void {
    this.#small.begin(head.entry);
    this.opts.report({
      type: "file-start",
      session: this.opts.session,
      path: head.entry.path,
      size: head.entry.size,
      resumed: 0,
    });
  }

  /**
   * Verifies and places the head file; returns its name (null: skipped) and
   * the bytes it took, or, for a small file, the staged file to place later.
   */
  async #finish(head: Queued, end: FileEnd): Promise<Finished | StagedFile> {
    this.opts.stopIfClosed();
    if (this.#isSmall(head)) {
      if (this.#small.entry !== head.entry) this.#beginSmall(head); // an empty file has no DATA
      return this.#small.stage(end, this.opts.folders, this.#digest!);
    }
    await this.#ensureOpen(head, "FILE_END");
    if (this.#currentFailed !== null) throw this.#currentFailed;
    const file = this.#current!;
    const name = await file.finish(end, this.opts.folders, this.opts.onConflict);
    return { name, bytes: file.received - file.resumed, resumed: file.resumed };
  }

  /** Ends the head file (verifies and places it, unless it failed), and queues its acknowledgement. */
  async #endFile(head: Queued, end: FileEnd | null): Promise<void> {
    // Acks go out in the order the files ended (PROTOCOL.md §5.10). A larger file is placed as
    // soon as it is verified, so the small files held for placing, which ended before it, are
    // placed first: on disk too, names come in the order the files ended.
    const small = this.#isSmall(head);
    if (!small && this.#staged.length > 0) await this.#placeStaged();
    let failure = this.#currentFailed;
    let done: Finished | StagedFile | null = null;
    if (failure === null && end !== null) {
      try {
        done = await this.#finish(head, end);
      } catch (err) {
        if (!(err instanceof Refusal)) throw err;
        failure = err;
      }
    }
    const file = this.#current;
    this.#current = null;
    this.#currentFailed = null;
    this.#small.entry = null;
    this.#started = false;
    this.#queueHead++;
    this.#releaseItem(head);
    if (done instanceof StagedFile) {
      this.#staged.push({ head, file: done, failure: null });
    } else if (small && this.#staged.length > 0) {
      // A small file that failed takes its turn behind the held ones, which go on syncing.
      this.#staged.push({ head, file: null, failure });
    } else {
      if (failure !== null || done?.name === null) await file?.discard();
      this.#acknowledge(head, failure, done);
    }
    if (this.#staged.length >= MAX_STAGED) await this.#placeStaged();
    await this.#advance();
    if (this.#acks.length >= ACK_FLUSH_COUNT || this.#ackBytes >= ACK_FLUSH_BYTES) {
      await this.#flushAcks();
    }
  }

  /**
   * Places the staged small files, in order, and queues their acknowledgements, and those of
   * the small files that failed among them.
   */
  async #placeStaged(): Promise<void> {
    const staged = this.#staged;
    this.#staged = [];
    const { onConflict } = this.opts;
    for (const { head, file, failure: failed } of staged) {
      if (file === null) {
        this.#acknowledge(head, failed, null);
        continue;
      }
      let failure: Refusal | null = null;
      let name: string | null = null;
      try {
        this.opts.stopIfClosed();
        name = await file.place(this.opts.folders, head.dir, head.name, onConflict);
      } catch (err) {
        if (!(err instanceof Refusal)) throw err;
        failure = err;
      }
      this.#acknowledge(head, failure, { name, bytes: file.bytes, resumed: 0 });
    }
  }

  /** Queues the acknowledgement of a file that ended, and reports it. */
  #acknowledge(head: Queued, failure: Refusal | null, done: Finished | null): void {
    const { path } = head.entry;
    let ack: Ack;
    if (failure !== null || done === null) {
      const reason = failure?.message ?? "not sent";
      ack = { id: head.entry.id, ok: false, reason };
      const damaged = failure instanceof DamagedData;
      if (damaged) ack.retry = true;
      this.opts.tally.fail(damaged ? head.entry : undefined);
      this.opts.report({ type: "file-failed", session: this.opts.session, path, reason });
    } else if (done.name === null) {
      ack = { id: head.entry.id, ok: false, skipped: true, reason: "already exists" };
      this.opts.report({
        type: "refused",
        session: this.opts.session,
        path,
        reason: "skipped: already exists",
      });
    } else {
      const stored = [...path.split("/").slice(0, -1), done.name].join("/");
      ack = { id: head.entry.id, ok: true, name: stored };
      this.opts.tally.stored(done.bytes, done.resumed);
      this.opts.report({
        type: "file",
        session: this.opts.session,
        path,
        name: stored,
        bytes: done.bytes,
        resumed: done.resumed,
      });
    }
    this.#acks.push(ack);
    this.#ackBytes += 64 + (ack.name?.length ?? 0) * 6 + (ack.reason?.length ?? 0) * 6;
  }

  /** Places staged files, fsyncs touched directories, then sends the waiting acknowledgements. */
  async #flushAcks(flush = true): Promise<void> {
    if (this.#staged.length > 0) await this.#placeStaged();
    if (this.opts.folders.dirty > 0) await this.opts.folders.sync();
    if (this.#acks.length > 0) {
      await this.opts.link.writer.frame(FrameType.ACK, encodeJson({ acks: this.#acks }));
      this.#acks = [];
      this.#ackBytes = 0;
    }
    if (flush) await this.opts.link.writer.flush();
  }
}

/** The quick check of a resumed transfer: a regular file of the same size and modification time. */
function sameFile(info: Deno.FileInfo, entry: Entry): boolean {
  const mtime = info.mtime?.getTime();
  // File systems keep mtimes at different precisions: within a millisecond is the same.
  return info.isFile && info.size === entry.size && mtime !== undefined &&
    Math.abs(mtime - entry.mtime) < 1;
}
