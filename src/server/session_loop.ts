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
import type { Digest } from "../protocol/digests.ts";
import { type Ack, decodeAnnounce, encodeJson } from "../protocol/messages.ts";
import { closeGracefully } from "../transport/byte_stream.ts";
import type { FramedLink } from "../transport/framed_link.ts";
import { type Accepted, AcceptedQueue, SessionBytes } from "./accepted.ts";
import type { Folders } from "./folders.ts";
import { type Greeting, peerError } from "./handshake.ts";
import { type ConflictPolicy, type Inbox, Refusal, type TransferStart } from "./inbox.ts";
import { DamagedData, IncomingFile, KEPT_MODE_BITS, type Resume } from "./incoming_file.ts";
import { Planner } from "./planner.ts";
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
  /** When the resumed transfer first started, or null. */
  #resumedSince: TransferStart | null;
  /** Accepted entries waiting for their data, in announce order. */
  #queue: AcceptedQueue;
  #planner: Planner;
  /** The session's bytes against --max-total. */
  #bytes: SessionBytes;
  #current: IncomingFile | null = null;
  /** The head file's data, when it takes the short path. */
  #small = new SmallFile();
  /**
   * Small files ended and waiting to be placed and acknowledged, in order: verified and written,
   * their fsyncs under way (`file`), or failed (`failure`, no file).
   */
  #staged: { head: Accepted; file: StagedFile | null; failure: Refusal | null }[] = [];
  /** The head file's FILE_START arrived (or none was needed). */
  #started = false;
  /** Set when the current file failed; its remaining data is dropped. */
  #currentFailed: Refusal | null = null;
  #acks: Ack[] = [];
  #ackBytes = 0;
  /** Directories this session created, until their own entry sets their metadata. */
  #created = new Set<string>();

  constructor(readonly opts: SessionLoopOptions) {
    const { session, report, inbox, folders, greeting, onConflict, limits, tally } = opts;
    this.#digest = greeting.digest;
    this.#resumedSince = greeting.resumedSince;
    this.#queue = new AcceptedQueue(inbox);
    this.#bytes = new SessionBytes(limits.maxTotal);
    this.#planner = new Planner({
      session,
      report,
      inbox,
      ensure: (parts) => folders.ensure(parts, this.#created),
      limits,
      onConflict,
      digest: greeting.digest,
      resumable: greeting.resumable,
      resumedSince: greeting.resumedSince,
      queue: this.#queue,
      bytes: this.#bytes,
      tally,
    });
  }

  /** Lets go of what the loop holds: its file (kept as a partial if cut off), claims, reservations. */
  async release(clean: boolean): Promise<void> {
    if (this.#current) await this.#current.discard(!clean && this.#currentFailed === null);
    this.#current = null;
    for (const { file } of this.#staged) file?.drop();
    this.#staged = [];
    this.#queue.releaseAll();
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
          await this.#endFile(this.#queue.head("FILE_END", end.id), end);
          break;
        }
        case FrameType.FILE_ABORT: {
          const abort = decodeFileAbort(frame.payload);
          const head = this.#queue.head("FILE_ABORT", abort.id);
          this.#currentFailed ??= new Refusal(`the sender gave up on it: ${abort.reason}`);
          await this.#endFile(head, null);
          break;
        }
        case FrameType.DONE:
          await this.#advance();
          if (this.#queue.pending > 0) {
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

  /** ANNOUNCE: the batch is decided and its PLAN sent before the next frame is read (§6.1). */
  async #announce(payload: Uint8Array): Promise<void> {
    const plan = await this.#planner.plan(decodeAnnounce(payload));
    await this.opts.link.writer.frame(FrameType.PLAN, encodeJson(plan));
    await this.opts.link.writer.flush();
    await this.#advance();
  }

  /**
   * Applies directory metadata for directories at the head of the queue
   * (they come after their contents), so the next head is a file, if any.
   * Only directories this transfer created get the sender's mode and mtime:
   * those made in this session, or, when resuming, in an earlier session
   * of the same transfer. An existing directory merged into is left as is.
   */
  async #advance(): Promise<void> {
    for (let item = this.#queue.takeDir(); item !== null; item = this.#queue.takeDir()) {
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

  /** FILE_START: the sender takes up (offset = offer) or declines (0) the resume offer. */
  async #start(payload: Uint8Array): Promise<void> {
    const start = decodeFileStart(payload);
    const head = this.#queue.head("FILE_START", start.id);
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
  async #open(head: Accepted, resume: Resume | null): Promise<void> {
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
        this.#digest,
        head.partial,
        resume,
      );
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      this.#currentFailed = err;
    }
  }

  /** Makes sure the head file is open (the first DATA or an empty file's FILE_END). */
  async #ensureOpen(head: Accepted, what: string): Promise<void> {
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
  #isSmall(head: Accepted): boolean {
    return head.entry.size !== null && head.entry.size <= SMALL_FILE_MAX && head.offer === null;
  }

  async #data(chunk: Uint8Array): Promise<void> {
    const head = this.#queue.head("DATA");
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
      // A streamed file's size is known only as it arrives: hold it to the session total too.
      if (head.entry.size === null) this.#bytes.stream(chunk.length);
      await this.#current!.write(
        chunk,
        this.opts.limits.maxSize,
        () => this.opts.link.reader.hold(),
      );
      this.opts.report({ type: "progress", session: this.opts.session, bytes: chunk.length });
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      this.#currentFailed = err;
      await this.#current?.discard();
      this.#current = null;
    }
  }

  #beginSmall(head: Accepted): void {
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
  async #finish(head: Accepted, end: FileEnd): Promise<Finished | StagedFile> {
    this.opts.stopIfClosed();
    if (this.#isSmall(head)) {
      if (this.#small.entry !== head.entry) this.#beginSmall(head); // an empty file has no DATA
      return this.#small.stage(end, this.opts.folders, this.#digest);
    }
    await this.#ensureOpen(head, "FILE_END");
    if (this.#currentFailed !== null) throw this.#currentFailed;
    const file = this.#current!;
    const name = await file.finish(end, this.opts.folders, this.opts.onConflict);
    return { name, bytes: file.received - file.resumed, resumed: file.resumed };
  }

  /** Ends the head file (verifies and places it, unless it failed), and queues its acknowledgement. */
  async #endFile(head: Accepted, end: FileEnd | null): Promise<void> {
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
    this.#queue.finish(head);
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
  #acknowledge(head: Accepted, failure: Refusal | null, done: Finished | null): void {
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
