/**
 * The file whose data is arriving (PROTOCOL.md §5.6–§5.9, §6.1): its FILE_START, DATA, and its
 * FILE_END or FILE_ABORT, one file at a time, the head of the accepted queue. A file of one
 * frame or less takes the short path: held in memory, verified and staged at FILE_END
 * (small_file.ts). A larger one is written to its staging file as it arrives, resuming a
 * partial where the sender took up the offer (incoming_file.ts), and verified and placed when
 * the ack queue gives it its turn. What ends here goes to the ack queue as an Ending.
 */
import { ProtocolError } from "../protocol/errors.ts";
import type { FileEnd, FileStart } from "../protocol/frame.ts";
import { type Digest, digestHex } from "../protocol/digests.ts";
import type { Accepted, SessionBytes } from "./accepted.ts";
import type { Ending, Outcome, Staged } from "./ack_queue.ts";
import type { Folders } from "./folders.ts";
import { type ConflictPolicy, Refusal } from "./inbox.ts";
import { IncomingFile, type Resume } from "./incoming_file.ts";
import type { Report } from "./server_events.ts";
import { SMALL_FILE_MAX, SmallFile } from "./small_file.ts";

export interface FileReceiverOptions {
  session: number;
  report: Report;
  folders: Folders;
  digest: Digest;
  onConflict: ConflictPolicy;
  /** --max-size: bounds a streamed file (size unknown) as it arrives. */
  maxSize: number;
  /** The session's bytes, which streamed files count against as they arrive. */
  bytes: SessionBytes;
  /** Keeps the last frame's payload valid while a write from it runs (FrameReader.hold). */
  hold: () => () => void;
  /** Throws once the session was closed from outside (nothing more is placed then). */
  stopIfClosed(): void;
}

export class FileReceiver {
  /** The head file's staging file, when it takes the long path and is open. */
  #current: IncomingFile | null = null;
  /** The head file's data, when it takes the short path. */
  #small = new SmallFile();
  /** The head file's FILE_START arrived (or none was needed). */
  #started = false;
  /** Set when the current file failed; its remaining data is dropped. */
  #failed: Refusal | null = null;

  constructor(readonly opts: FileReceiverOptions) {}

  /** FILE_START: the sender takes up (offset = offer) or declines (0) the resume offer. */
  async start(head: Accepted, start: FileStart): Promise<void> {
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

  /**
   * DATA for the head file: a promise while a larger file's write runs; a small file's data
   * is only held, at once (null).
   */
  data(head: Accepted, chunk: Uint8Array): Promise<void> | null {
    if (head.entry.kind !== "file") throw new ProtocolError("bad-sequence", "DATA for a directory");
    if (!isSmall(head)) return this.#dataLarge(head, chunk);
    if (this.#failed !== null) return null;
    if (this.#small.entry !== head.entry) this.#beginSmall(head);
    try {
      this.#small.add(chunk);
      this.opts.report({ type: "progress", session: this.opts.session, bytes: chunk.length });
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      this.#failed = err;
    }
    return null;
  }

  async #dataLarge(head: Accepted, chunk: Uint8Array): Promise<void> {
    const { session, report } = this.opts;
    await this.#ensureOpen(head, "DATA");
    if (this.#failed !== null) return;
    try {
      // A streamed file's size is known only as it arrives: hold it to the session total too.
      if (head.entry.size === null) this.opts.bytes.stream(chunk.length);
      await this.#current!.write(chunk, this.opts.maxSize, this.opts.hold);
      report({ type: "progress", session, bytes: chunk.length });
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      this.#failed = err;
      await this.#current?.discard();
      this.#current = null;
    }
  }

  /** FILE_ABORT: the sender gave up on the head file. */
  abandon(reason: string): void {
    this.#failed ??= new Refusal(`the sender gave up on it: ${reason}`);
  }

  /**
   * The head file ended (FILE_END; `end` null: FILE_ABORT). A small file is verified and staged
   * now; a larger one is verified and placed by the Ending's `place`, when the ack queue runs it.
   */
  end(head: Accepted, end: FileEnd | null): Ending {
    if (!isSmall(head)) return { kind: "large", place: () => this.#endLarge(head, end) };
    let failure = this.#failed;
    let staged: Staged | null = null;
    if (failure === null && end !== null) {
      try {
        this.opts.stopIfClosed();
        if (this.#small.entry !== head.entry) this.#beginSmall(head); // an empty file has no DATA
        staged = this.#small.stage(
          end,
          this.opts.folders,
          this.opts.digest,
          head.dir,
          this.opts.onConflict,
        );
      } catch (err) {
        if (!(err instanceof Refusal)) throw err;
        failure = err;
      }
    }
    this.#reset();
    return staged !== null
      ? { kind: "staged", file: staged, sha256: this.#sha256(end) }
      : { kind: "failed", failure };
  }

  /** Verifies and places a larger file; its staging file goes if it failed or was skipped. */
  async #endLarge(head: Accepted, end: FileEnd | null): Promise<Outcome> {
    let failure = this.#failed;
    let done: Outcome["done"] = null;
    if (failure === null && end !== null) {
      try {
        this.opts.stopIfClosed();
        await this.#ensureOpen(head, "FILE_END");
        if (this.#failed !== null) throw this.#failed;
        const file = this.#current!;
        const name = await file.finish(end, this.opts.folders, this.opts.onConflict);
        done = {
          name,
          bytes: file.received - file.resumed,
          resumed: file.resumed,
          sha256: this.#sha256(end),
        };
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

  /** Lets go of the file in progress: kept as a resumable partial if the session was cut off. */
  async release(clean: boolean): Promise<void> {
    if (this.#current) await this.#current.discard(!clean && this.#failed === null);
    this.#current = null;
  }

  /** A verified file's SHA-256 in hex for the report, in a sha256 session (its FILE_END's). */
  #sha256(end: FileEnd | null): string | undefined {
    return end !== null && this.opts.digest.name === "sha256" ? digestHex(end.digest) : undefined;
  }

  #reset(): void {
    this.#current = null;
    this.#failed = null;
    this.#small.entry = null;
    this.#started = false;
  }

  /** Opens the head file's staging file, unless it failed already. */
  async #open(head: Accepted, resume: Resume | null): Promise<void> {
    this.#fileStart(head, resume?.offset ?? 0);
    try {
      this.#current = await IncomingFile.create(
        this.opts.folders,
        head.entry,
        head.dir,
        head.name,
        this.opts.digest,
        head.partial,
        resume,
      );
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      this.#failed = err;
    }
  }

  /** Makes sure the head file is open (the first DATA or an empty file's FILE_END). */
  async #ensureOpen(head: Accepted, what: string): Promise<void> {
    if (this.#current !== null || this.#failed !== null) return;
    if (head.offer !== null && !this.#started) {
      throw new ProtocolError(
        "bad-sequence",
        `${what} before FILE_START answered the resume offer`,
      );
    }
    this.#started = true;
    await this.#open(head, null);
  }

  #beginSmall(head: Accepted): void {
    this.#small.begin(head.entry);
    this.#fileStart(head, 0);
  }

  #fileStart(head: Accepted, resumed: number): void {
    const { path, size } = head.entry;
    this.opts.report({ type: "file-start", session: this.opts.session, path, size, resumed });
  }
}

/** Whether the head file takes the short path (small_file.ts): size known, one frame, no resume. */
function isSmall(head: Accepted): boolean {
  return head.entry.size !== null && head.entry.size <= SMALL_FILE_MAX && head.offer === null;
}
