/**
 * One sender's session on the receiver: the handshake, then the batch loop.
 *
 * Frames are handled in the order they arrive, on one task, so the session
 * holds at most one open file. Plans go out as soon as a batch is checked;
 * acknowledgements are collected and sent, after the directories they touch
 * are fsynced, whenever the sender has nothing more queued for us (or enough
 * have piled up), so "acknowledged" always means "verified and durable".
 */
import { ProtocolError } from "../protocol/errors.ts";
import { decodeFileAbort, decodeFileEnd, type FileEnd, FrameType } from "../protocol/frame.ts";
import {
  ANNOUNCE_WINDOW,
  MAX_BATCH_ENTRIES,
  MAX_FRAME_PAYLOAD,
  MAX_PATH_BYTES,
} from "../protocol/limits.ts";
import {
  type Ack,
  checkEntry,
  type Decision,
  decodeAnnounce,
  decodeError,
  decodeHello,
  encodeJson,
  type Entry,
  entryId,
  type Welcome,
} from "../protocol/messages.ts";
import {
  Channel,
  decodePreamble,
  encodePreamble,
  PREAMBLE_BYTES,
  PROTOCOL_VERSION,
} from "../protocol/preamble.ts";
import type { ByteStream } from "../transport/byte_stream.ts";
import { type Frame, FrameReader, FrameWriter } from "../transport/frame_io.ts";
import { Watchdog } from "../transport/watchdog.ts";
import { type ConflictPolicy, type Inbox, Refusal, syncDirs } from "./inbox.ts";
import { IncomingFile, KEPT_MODE_BITS } from "./incoming_file.ts";

export const SUPPORTED_DIGESTS = ["sha256"];

export interface SessionOptions {
  inbox: Inbox;
  onConflict: ConflictPolicy;
  /** Largest file accepted, in bytes. */
  maxSize: number;
  handshakeTimeoutMs: number;
  idleTimeoutMs: number;
  software: string;
  onEvent: (event: ServerEvent) => void;
}

export type ServerEvent =
  | { type: "session-start"; session: number; peer: string }
  | { type: "file"; session: number; name: string; bytes: number }
  | { type: "file-failed"; session: number; path: string; reason: string }
  | { type: "refused"; session: number; path: string; reason: string }
  | {
    type: "session-end";
    session: number;
    peer: string;
    files: number;
    bytes: number;
    failed: number;
    seconds: number;
    error?: string;
  };

/** An accepted entry waiting for its turn in the data stream. */
interface Queued {
  entry: Entry;
  /** Absolute directory: the parent for a file, the directory itself for a dir. */
  dir: string;
  name: string;
}

/** Send acknowledgements once this many are waiting, even if more data is queued. */
const ACK_FLUSH_COUNT = 512;
const ACK_FLUSH_BYTES = 256 * 1024;
/** Most entries a sender may have announced but not yet finished. */
const MAX_QUEUED = (ANNOUNCE_WINDOW + 1) * MAX_BATCH_ENTRIES;

export class Session {
  #reader: FrameReader;
  #writer: FrameWriter;
  #watchdog: Watchdog;
  #digest = "sha256";
  #nextBatch = 0;
  #lastId = -1;
  #queue: Queued[] = [];
  #queueHead = 0;
  #current: IncomingFile | null = null;
  /** Set when the current file failed; its remaining data is dropped. */
  #currentFailed: string | null = null;
  #acks: Ack[] = [];
  #ackBytes = 0;
  #dirty = new Set<string>();
  #files = 0;
  #bytes = 0;
  #failed = 0;
  #started = performance.now();
  #aborted: string | null = null;

  constructor(
    readonly id: number,
    readonly conn: ByteStream,
    readonly peer: string,
    readonly opts: SessionOptions,
  ) {
    this.#watchdog = new Watchdog(opts.handshakeTimeoutMs, () => conn.close());
    const touch = () => this.#watchdog.touch();
    this.#reader = new FrameReader(conn, touch);
    this.#writer = new FrameWriter(conn, touch);
  }

  /** Runs the session to its end. Never throws: failures end this session only. */
  async run(): Promise<void> {
    const { opts } = this;
    let error: string | undefined;
    opts.onEvent({ type: "session-start", session: this.id, peer: this.peer });
    try {
      if (await this.#handshake()) {
        this.#watchdog.reset(opts.idleTimeoutMs);
        await this.#loop();
      }
    } catch (err) {
      error = this.#describe(err);
      if (err instanceof ProtocolError) await this.#sendError(err.code, err.message);
      else if (this.#aborted === null && !this.#watchdog.expired && !isConnectionError(err)) {
        await this.#sendError("internal", "the receiver failed; see its log");
      }
    } finally {
      this.#watchdog.stop();
      if (this.#current) await this.#current.discard();
      try {
        this.conn.close();
      } catch { /* already closed */ }
    }
    opts.onEvent({
      type: "session-end",
      session: this.id,
      peer: this.peer,
      files: this.#files,
      bytes: this.#bytes,
      failed: this.#failed,
      seconds: (performance.now() - this.#started) / 1000,
      error,
    });
  }

  /** Ends the session from outside (server shutdown): the connection is closed. */
  abort(reason: string): void {
    this.#aborted = reason;
    try {
      this.conn.close();
    } catch { /* already closed */ }
  }

  #describe(err: unknown): string {
    if (this.#aborted !== null) return this.#aborted;
    if (this.#watchdog.expired) return "timed out: the sender went quiet";
    if (err instanceof ProtocolError) return `protocol error: ${err.message}`;
    if (isConnectionError(err)) return "the sender disconnected";
    return `internal error: ${err instanceof Error ? err.stack ?? err.message : String(err)}`;
  }

  async #sendError(code: string, message: string): Promise<void> {
    try {
      await this.#writer.frame(FrameType.ERROR, encodeJson({ code, message }));
      await this.#writer.flush();
    } catch { /* the peer is gone */ }
  }

  /** Preamble and HELLO/WELCOME. False if the peer left before saying anything. */
  async #handshake(): Promise<boolean> {
    const raw = await this.#reader.readRaw(PREAMBLE_BYTES);
    if (raw === null) return false;
    const theirs = decodePreamble(raw);
    await this.#writer.raw(encodePreamble({ version: PROTOCOL_VERSION, channel: Channel.plain }));
    if (theirs.version !== PROTOCOL_VERSION) {
      throw new ProtocolError(
        "unsupported-version",
        `this receiver speaks ferry protocol version ${PROTOCOL_VERSION}, the sender version ${theirs.version}`,
      );
    }
    if (theirs.channel !== Channel.plain) {
      throw new ProtocolError("unsupported-channel", `unknown channel ${theirs.channel}`);
    }
    const hello = await this.#expect(FrameType.HELLO, "HELLO");
    const { digests } = decodeHello(hello.payload);
    const digest = digests.find((d) => SUPPORTED_DIGESTS.includes(d));
    if (!digest) {
      throw new ProtocolError("no-common-digest", `no common digest; this receiver has sha256`);
    }
    this.#digest = digest;
    const welcome: Welcome = {
      software: this.opts.software,
      digest,
      limits: {
        maxBatchEntries: MAX_BATCH_ENTRIES,
        maxFrame: MAX_FRAME_PAYLOAD,
        maxPathBytes: MAX_PATH_BYTES,
      },
    };
    await this.#writer.frame(FrameType.WELCOME, encodeJson(welcome));
    await this.#writer.flush();
    return true;
  }

  async #expect(type: number, name: string): Promise<Frame> {
    const frame = await this.#reader.next();
    if (frame === null) throw new ProtocolError("truncated", `connection closed before ${name}`);
    if (frame.type === FrameType.ERROR) {
      const e = decodeError(frame.payload);
      throw new ProtocolError("peer-error", `the sender reported: ${e.message}`);
    }
    if (frame.type !== type) {
      throw new ProtocolError(
        "unexpected-frame",
        `expected ${name}, got frame 0x${frame.type.toString(16)}`,
      );
    }
    return frame;
  }

  async #loop(): Promise<void> {
    for (;;) {
      if (this.#reader.buffered === 0) await this.#flushAcks();
      const frame = await this.#reader.next();
      if (frame === null) {
        throw new ProtocolError("truncated", "the sender closed the connection before DONE");
      }
      switch (frame.type) {
        case FrameType.ANNOUNCE:
          await this.#announce(frame.payload);
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
          this.#currentFailed ??= `the sender gave up on it: ${abort.reason}`;
          await this.#endFile(head, null);
          break;
        }
        case FrameType.DONE:
          await this.#advance();
          if (this.#queueHead < this.#queue.length) {
            throw new ProtocolError("bad-sequence", "DONE while announced files are unsent");
          }
          await this.#flushAcks(false);
          await this.#writer.frame(
            FrameType.BYE,
            encodeJson({ files: this.#files, bytes: this.#bytes, failed: this.#failed }),
          );
          await this.#writer.flush();
          return;
        case FrameType.ERROR: {
          const e = decodeError(frame.payload);
          throw new ProtocolError("peer-error", `the sender reported: ${e.message}`);
        }
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
    const { batch, entries } = decodeAnnounce(payload);
    if (batch !== this.#nextBatch) {
      throw new ProtocolError("bad-sequence", `expected batch ${this.#nextBatch}, got ${batch}`);
    }
    this.#nextBatch++;
    if (this.#queue.length - this.#queueHead + entries.length > MAX_QUEUED) {
      throw new ProtocolError("too-many-entries", "too many entries announced ahead of their data");
    }
    const decisions: Decision[] = [];
    for (const raw of entries) {
      const id = entryId(raw);
      if (id <= this.#lastId) {
        throw new ProtocolError("bad-sequence", `entry id ${id} does not increase`);
      }
      this.#lastId = id;
      const decision = await this.#decide(raw);
      decisions.push(decision);
      if (decision.action !== "accept") {
        const path = typeof (raw as { path?: unknown }).path === "string"
          ? (raw as { path: string }).path
          : "(no name)";
        this.opts.onEvent({
          type: "refused",
          session: this.id,
          path,
          reason: `${decision.action === "skip" ? "skipped" : "refused"}: ${decision.reason}`,
        });
        if (decision.action === "refuse") this.#failed++;
      }
    }
    await this.#writer.frame(FrameType.PLAN, encodeJson({ batch, decisions }));
    await this.#writer.flush();
    await this.#advance();
  }

  async #decide(raw: unknown): Promise<Decision> {
    const check = checkEntry(raw);
    if (!check.ok) return { id: check.id, action: "refuse", reason: check.reason };
    const { entry } = check;
    const { inbox, onConflict, maxSize } = this.opts;
    try {
      const parts = inbox.parse(entry.path);
      if (entry.kind === "dir") {
        const dir = await inbox.ensureDir(parts, this.#dirty);
        this.#enqueue({ entry, dir, name: "" });
        return { id: entry.id, action: "accept" };
      }
      if (entry.size !== null && entry.size > maxSize) {
        return {
          id: entry.id,
          action: "refuse",
          reason: `larger than the receiver's limit of ${maxSize} bytes`,
        };
      }
      const dir = await inbox.ensureDir(parts.slice(0, -1), this.#dirty);
      const name = parts[parts.length - 1];
      const existing = await inbox.existing(inbox.pathOf(parts));
      if (existing !== "none" && onConflict !== "rename") {
        if (onConflict === "skip") {
          return { id: entry.id, action: "skip", reason: "already exists" };
        }
        if (onConflict === "fail") {
          return { id: entry.id, action: "refuse", reason: "already exists on the receiver" };
        }
        if (existing === "dir") {
          return { id: entry.id, action: "refuse", reason: "a directory is in the way" };
        }
      }
      this.#enqueue({ entry, dir, name });
      return { id: entry.id, action: "accept", offset: 0 };
    } catch (err) {
      if (err instanceof Refusal) return { id: entry.id, action: "refuse", reason: err.message };
      throw err;
    }
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
   */
  async #advance(): Promise<void> {
    while (this.#queueHead < this.#queue.length) {
      const item = this.#queue[this.#queueHead];
      if (item.entry.kind !== "dir") return;
      this.#queueHead++;
      try {
        if (Deno.build.os !== "windows") {
          await Deno.chmod(item.dir, (item.entry.mode & KEPT_MODE_BITS) | 0o700);
        }
        const mtime = new Date(item.entry.mtime);
        await Deno.utime(item.dir, mtime, mtime);
        this.#dirty.add(item.dir);
      } catch { /* metadata of a directory is best effort */ }
    }
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

  async #data(chunk: Uint8Array): Promise<void> {
    const head = this.#head("DATA");
    if (this.#currentFailed !== null) return;
    try {
      this.#current ??= await IncomingFile.create(
        this.opts.inbox,
        head.entry,
        head.dir,
        head.name,
        this.#digest,
      );
      await this.#current.write(chunk, this.opts.maxSize);
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      this.#currentFailed = err.message;
      await this.#current?.discard();
      this.#current = null;
    }
  }

  /** Ends the head file (verifies and places it, unless it failed), and queues its acknowledgement. */
  async #endFile(head: Queued, end: FileEnd | null): Promise<void> {
    let reason = this.#currentFailed;
    let name: string | null = null;
    let skipped = false;
    if (reason === null && end !== null) {
      try {
        this.#current ??= await IncomingFile.create(
          this.opts.inbox,
          head.entry,
          head.dir,
          head.name,
          this.#digest,
        );
        name = await this.#current.finish(end, this.opts.inbox, this.opts.onConflict, this.#dirty);
        skipped = name === null;
      } catch (err) {
        if (!(err instanceof Refusal)) throw err;
        reason = err.message;
      }
    }
    const file = this.#current;
    this.#current = null;
    this.#currentFailed = null;
    this.#queueHead++;
    if (reason !== null || skipped) await file?.discard();
    const dirParts = head.entry.path.split("/").slice(0, -1);
    let ack: Ack;
    if (skipped) {
      ack = { id: head.entry.id, ok: false, reason: "skipped: already exists" };
      this.opts.onEvent({
        type: "refused",
        session: this.id,
        path: head.entry.path,
        reason: "skipped: already exists",
      });
    } else if (reason !== null) {
      ack = { id: head.entry.id, ok: false, reason };
      this.#failed++;
      this.opts.onEvent({ type: "file-failed", session: this.id, path: head.entry.path, reason });
    } else {
      const stored = [...dirParts, name!].join("/");
      ack = { id: head.entry.id, ok: true, name: stored };
      this.#files++;
      this.#bytes += file!.received;
      this.opts.onEvent({ type: "file", session: this.id, name: stored, bytes: file!.received });
    }
    this.#acks.push(ack);
    this.#ackBytes += 64 + (ack.name?.length ?? 0) * 3 + (ack.reason?.length ?? 0) * 3;
    await this.#advance();
    if (this.#acks.length >= ACK_FLUSH_COUNT || this.#ackBytes >= ACK_FLUSH_BYTES) {
      await this.#flushAcks();
    }
  }

  /** Fsyncs touched directories, then sends the waiting acknowledgements. */
  async #flushAcks(flush = true): Promise<void> {
    if (this.#dirty.size > 0) {
      await syncDirs(this.#dirty);
      this.#dirty.clear();
    }
    if (this.#acks.length > 0) {
      await this.#writer.frame(FrameType.ACK, encodeJson({ acks: this.#acks }));
      this.#acks = [];
      this.#ackBytes = 0;
    }
    if (flush) await this.#writer.flush();
  }
}

function isConnectionError(err: unknown): boolean {
  return err instanceof Deno.errors.BadResource || err instanceof Deno.errors.ConnectionReset ||
    err instanceof Deno.errors.BrokenPipe || err instanceof Deno.errors.UnexpectedEof ||
    err instanceof Deno.errors.Interrupted || err instanceof Deno.errors.ConnectionAborted ||
    (err instanceof ProtocolError && err.code === "truncated");
}
