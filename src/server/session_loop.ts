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
import { decodeAnnounce, encodeJson } from "../protocol/messages.ts";
import { closeGracefully } from "../transport/byte_stream.ts";
import type { FramedLink } from "../transport/framed_link.ts";
import { type Accepted, AcceptedQueue, SessionBytes } from "./accepted.ts";
import { AckQueue, type Ending, type Outcome } from "./ack_queue.ts";
import type { Folders } from "./folders.ts";
import { type Greeting, peerError } from "./handshake.ts";
import { type ConflictPolicy, type Inbox, Refusal, type TransferStart } from "./inbox.ts";
import { IncomingFile, KEPT_MODE_BITS, type Resume } from "./incoming_file.ts";
import { Planner } from "./planner.ts";
import type { Report } from "./server_events.ts";
import type { ServerLimits } from "./server_limits.ts";
import { SMALL_FILE_MAX, SmallFile, type StagedFile } from "./small_file.ts";
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
  /** The head file's FILE_START arrived (or none was needed). */
  #started = false;
  /** Set when the current file failed; its remaining data is dropped. */
  #currentFailed: Refusal | null = null;
  /** Where ended files wait to be placed and acknowledged, in order. */
  #acks: AckQueue;
  /** Directories this session created, until their own entry sets their metadata. */
  #created = new Set<string>();

  constructor(readonly opts: SessionLoopOptions) {
    const { session, report, link, inbox, folders, greeting, onConflict, limits, tally } = opts;
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
    this.#acks = new AckQueue({
      session,
      report,
      writer: link.writer,
      folders,
      onConflict,
      tally,
      stopIfClosed: () => opts.stopIfClosed(),
    });
  }

  /** Lets go of what the loop holds: its file (kept as a partial if cut off), claims, reservations. */
  async release(clean: boolean): Promise<void> {
    if (this.#current) await this.#current.discard(!clean && this.#currentFailed === null);
    this.#current = null;
    this.#acks.drop();
    this.#queue.releaseAll();
  }

  /** Routes the sender's frames until DONE has been answered with BYE. */
  async run(): Promise<void> {
    for (;;) {
      this.opts.stopIfClosed();
      if (this.opts.link.reader.buffered === 0) await this.#acks.flush();
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
          await this.#acks.flush(false);
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
      await this.#acks.placeHeld();
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

  /** The head file ended: the ack queue takes it, then the directories behind it get their metadata. */
  async #endFile(head: Accepted, end: FileEnd | null): Promise<void> {
    await this.#acks.ended(head, this.#ending(head, end));
    this.#queue.finish(head);
    await this.#advance();
    if (this.#acks.full) await this.#acks.flush();
  }

  /**
   * How the head file ended (FILE_END; `end` null: FILE_ABORT). A small file is verified and
   * staged now; a larger one is verified and placed by the Ending's `place`, when the ack queue
   * runs it.
   */
  #ending(head: Accepted, end: FileEnd | null): Ending {
    if (!this.#isSmall(head)) return { kind: "large", place: () => this.#endLarge(head, end) };
    let failure = this.#currentFailed;
    let staged: StagedFile | null = null;
    if (failure === null && end !== null) {
      try {
        this.opts.stopIfClosed();
        if (this.#small.entry !== head.entry) this.#beginSmall(head); // an empty file has no DATA
        staged = this.#small.stage(end, this.opts.folders, this.#digest);
      } catch (err) {
        if (!(err instanceof Refusal)) throw err;
        failure = err;
      }
    }
    this.#reset();
    return staged !== null ? { kind: "staged", file: staged } : { kind: "failed", failure };
  }

  /** Verifies and places a larger file; its staging file goes if it failed or was skipped. */
  async #endLarge(head: Accepted, end: FileEnd | null): Promise<Outcome> {
    let failure = this.#currentFailed;
    let done: Outcome["done"] = null;
    if (failure === null && end !== null) {
      try {
        this.opts.stopIfClosed();
        await this.#ensureOpen(head, "FILE_END");
        if (this.#currentFailed !== null) throw this.#currentFailed;
        const file = this.#current!;
        const name = await file.finish(end, this.opts.folders, this.opts.onConflict);
        done = { name, bytes: file.received - file.resumed, resumed: file.resumed };
      } catch (err) {
        if (!(err instanceof Refusal)) throw err;
        failure = err;
      }
    }
    const file = this.#current;
    this.#reset();
    if (failure !== null || done?.name === null) await file?.discard();
    return { failure, done };
  }

  #reset(): void {
    this.#current = null;
    this.#currentFailed = null;
    this.#small.entry = null;
    this.#started = false;
  }
}
