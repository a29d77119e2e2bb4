/**
 * The acknowledgements of the files that ended, and the promise they carry (PROTOCOL.md §5.10,
 * §6.3): every ended file gets exactly one Ack, in the order the files ended, and `ok: true` is
 * written only once the file is verified, fsynced, placed under its final name, and its folder
 * fsynced. This is the only place that orders placing and acknowledging.
 *
 * Files come in verified (a small one: written and staged, its fsync under way) or ready to be
 * verified and placed (a larger one: `place`). Small files are held and placed in order, later,
 * so that their fsyncs overlap (small_file.ts); a larger file is placed as soon as it ends, after
 * the small files held, which ended before it: on disk too, names come in the order the files
 * ended. Acks wait here until flush() has placed what is held and fsynced the folders placing
 * touched; only then does their ACK frame go out.
 */
import { FrameType, type FrameTypeCode } from "../protocol/frame.ts";
import { type Ack, encodeJson } from "../protocol/messages.ts";
import type { Accepted } from "./accepted.ts";
import type { Folders } from "./folders.ts";
import { type ConflictPolicy, Refusal } from "./inbox.ts";
import { DamagedData } from "./incoming_file.ts";
import type { Report, ServerEvent } from "./server_events.ts";
import type { Tally } from "./tally.ts";

/** A file that ended: the name it was stored under (null: skipped), the bytes it took. */
export interface Finished {
  name: string | null;
  bytes: number;
  resumed: number;
  /** The verified SHA-256 (hex), in a sha256 session. */
  sha256?: string | undefined;
}

/** How a file ended: stored or skipped (`done`), or not stored and why (`failure`). */
export interface Outcome {
  failure: Refusal | null;
  done: Finished | null;
}

/** A small file verified and staged (StagedFile), its fsync under way, to be placed in turn. */
export interface Staged {
  readonly bytes: number;
  /**
   * Waits for its fsync, then gives it its final name; null: skipped (the name is taken).
   * Answers at once (not a promise) where nothing had to wait.
   */
  place(
    folders: Folders,
    dir: string,
    name: string,
    policy: ConflictPolicy,
  ): Promise<string | null> | string | null;
  /** Removes it (the session ended before it was placed). */
  drop(): void;
}

/** How a file that ended comes to the ack queue (FileReceiver.end). */
export type Ending =
  | { kind: "staged"; file: Staged; sha256?: string | undefined }
  /** A small file that failed (or was given up on: FILE_ABORT). */
  | { kind: "failed"; failure: Refusal | null }
  /** A larger file: `place` verifies and places it, once it is its turn. */
  | { kind: "large"; place(): Promise<Outcome> };

/** Where the ACK frames go (FrameWriter). */
export interface AckWriter {
  frame(type: FrameTypeCode, payload: Uint8Array): Promise<void>;
  flush(): Promise<void>;
}

export interface AckQueueOptions {
  session: number;
  report: Report;
  writer: AckWriter;
  /** Places the staged files, and fsyncs the folders whose entries changed. */
  folders: Folders;
  onConflict: ConflictPolicy;
  /** The sender takes "sync": an Ack says `replaced` (§9.3). */
  sync?: boolean;
  tally: Tally;
  /** Throws once the session was closed from outside: nothing more is placed then. */
  stopIfClosed(): void;
}

/** Small files staged (fsyncs in flight, files open) before they are placed. */
export const MAX_STAGED = 64;

/** Send acknowledgements once this many are waiting, even if more data is queued. */
export const ACK_FLUSH_COUNT = 512;
export const ACK_FLUSH_BYTES = 256 * 1024;

export class AckQueue {
  /**
   * Small files ended and waiting to be placed and acknowledged, in order: staged (`file`),
   * or failed behind staged ones (`failure`, no file).
   */
  #held: {
    head: Accepted;
    file: Staged | null;
    failure: Refusal | null;
    sha256?: string | undefined;
  }[] = [];
  #acks: Ack[] = [];
  #ackBytes = 0;

  constructor(readonly opts: AckQueueOptions) {}

  /**
   * A file ended: its Ack takes its turn, after those of the files that ended before it.
   * A promise only when there is something to wait for (placing: a larger file, or enough
   * small ones held); a small file is most often just held, and the loop goes on at once.
   */
  ended(head: Accepted, ending: Ending): Promise<void> | null {
    if (ending.kind === "large") return this.#endedLarge(head, ending);
    if (ending.kind === "staged") {
      this.#held.push({ head, file: ending.file, failure: null, sha256: ending.sha256 });
    } else if (this.#held.length > 0) {
      // A small file that failed takes its turn behind the held ones, which go on syncing.
      this.#held.push({ head, file: null, failure: ending.failure });
    } else {
      this.#acknowledge(head, ending.failure, null);
    }
    return this.#held.length >= MAX_STAGED ? this.placeHeld() : null;
  }

  /** A larger file ended: placed after the small files held, which ended before it. */
  async #endedLarge(head: Accepted, ending: { place(): Promise<Outcome> }): Promise<void> {
    await this.placeHeld();
    const { failure, done } = await ending.place();
    this.#acknowledge(head, failure, done);
  }

  /**
   * A text ended (PROTOCOL.md §5.15): once the files that ended before it are placed, it is
   * reported (shown to the person receiving) and acknowledged, or its failure is.
   */
  async text(head: Accepted, result: { text: string } | { failure: Refusal }): Promise<void> {
    await this.placeHeld();
    if ("failure" in result) {
      this.#acknowledge(head, result.failure, null);
      return;
    }
    const { session, report, tally } = this.opts;
    tally.texts++;
    report({ type: "text", session, text: result.text });
    const ack: Ack = { id: head.entry.id, ok: true };
    this.#acks.push(ack);
    this.#ackBytes += 64;
  }

  /**
   * Places the held small files, in order, and queues their Acks, and those of the small files
   * that failed among them.
   */
  async placeHeld(): Promise<void> {
    if (this.#held.length === 0) return;
    const held = this.#held;
    this.#held = [];
    const { folders, onConflict, stopIfClosed } = this.opts;
    let next = 0;
    try {
      for (; next < held.length; next++) {
        const { head, file, failure: failed, sha256 } = held[next]!;
        if (file === null) {
          this.#acknowledge(head, failed, null);
          continue;
        }
        let failure: Refusal | null = null;
        let name: string | null = null;
        try {
          stopIfClosed();
          const placing = file.place(folders, head.dir, head.name, onConflict);
          name = placing instanceof Promise ? await placing : placing;
        } catch (err) {
          if (!(err instanceof Refusal)) throw err;
          failure = err;
        }
        this.#acknowledge(head, failure, { name, bytes: file.bytes, resumed: 0, sha256 });
      }
    } finally {
      // Stopped partway (the session closed, an error that ends it): `drop()` no longer sees
      // the files not placed, so they are let go of here (an unnamed one holds a descriptor).
      for (let i = next; i < held.length; i++) held[i]!.file?.drop();
    }
  }

  /** Whether enough Acks are waiting to send them before reading on. */
  get full(): boolean {
    return this.#acks.length >= ACK_FLUSH_COUNT || this.#ackBytes >= ACK_FLUSH_BYTES;
  }

  /**
   * Places the held files, fsyncs the folders placing touched, then sends the waiting Acks;
   * `push` also flushes the writer (not before BYE, which follows).
   */
  async flush(push = true): Promise<void> {
    const { folders, writer } = this.opts;
    await this.placeHeld();
    if (folders.dirty > 0) await folders.sync();
    if (this.#acks.length > 0) {
      await writer.frame(FrameType.ACK, encodeJson({ acks: this.#acks }));
      this.#acks = [];
      this.#ackBytes = 0;
    }
    if (push) await writer.flush();
  }

  /** Drops the files held and not placed (the session ended). */
  drop(): void {
    for (const { file } of this.#held) file?.drop();
    this.#held = [];
  }

  /** Queues the Ack of a file that ended, and reports it. */
  #acknowledge(head: Accepted, failure: Refusal | null, done: Finished | null): void {
    const { session, report, tally } = this.opts;
    const path = head.entry.kind === "text" ? "(text)" : head.entry.path;
    let ack: Ack;
    if (failure !== null || done === null) {
      const reason = failure?.message ?? "not sent";
      ack = { id: head.entry.id, ok: false, reason };
      const damaged = failure instanceof DamagedData;
      if (damaged) ack.retry = true;
      tally.fail(damaged ? head.entry : undefined);
      report({ type: "file-failed", session, path, reason });
    } else if (done.name === null) {
      ack = { id: head.entry.id, ok: false, skipped: true, reason: "already exists" };
      report({ type: "refused", session, path, reason: "skipped: already exists" });
    } else {
      const stored = path.slice(0, path.lastIndexOf("/") + 1) + done.name;
      ack = { id: head.entry.id, ok: true, name: stored };
      if (head.replaces === true) {
        tally.updated++;
        if (this.opts.sync === true) ack.replaced = true;
      }
      tally.stored(done.bytes, done.resumed);
      const file: ServerEvent & { type: "file" } = {
        type: "file",
        session,
        path,
        name: stored,
        bytes: done.bytes,
        resumed: done.resumed,
      };
      if (head.replaces === true) file.replaced = true;
      if (done.sha256 !== undefined) file.sha256 = done.sha256;
      report(file);
    }
    this.#acks.push(ack);
    this.#ackBytes += 64 + (ack.name?.length ?? 0) * 6 + (ack.reason?.length ?? 0) * 6;
  }
}
