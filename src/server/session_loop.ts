/**
 * A session after WELCOME: each frame from the sender goes to the part that handles it, in the
 * order it arrives, on one task. ANNOUNCE to the planner (its PLAN goes out at once), the file
 * frames to the file receiver, what ends there to the ack queue, which sends the Acks whenever
 * the sender has nothing more queued for us (or enough have piled up), and BYE after DONE.
 * The data flows one way: planner → accepted queue → file receiver → ack queue → ACK.
 */
import { KeepAlive } from "../transport/keep_alive.ts";
import { ProtocolError } from "../protocol/errors.ts";
import {
  decodeFileAbort,
  decodeFileEnd,
  decodeFileStart,
  type FileEnd,
  FrameType,
} from "../protocol/frame.ts";
import { decodeAnnounce, encodeJson, type Totals } from "../protocol/messages.ts";
import { loadDigest } from "../protocol/digests.ts";
import { decodeList, decodeListed } from "../protocol/listing.ts";
import { opensslSha256Into } from "../transport/sha256_openssl.ts";
import { nativeDigests } from "../transport/native_digests.ts";
import { type Listing, sendListing } from "./listing_walk.ts";
import { loadNativeReader } from "../native/native_read.ts";
import { closeGracefully } from "../transport/byte_stream.ts";
import type { Frame } from "../transport/frame_io.ts";
import type { FramedLink } from "../transport/framed_link.ts";
import { type Accepted, AcceptedQueue, SessionBytes } from "./accepted.ts";
import { type Ask, questionOf } from "./ask.ts";
import { AckQueue } from "./ack_queue.ts";
import { FileReceiver } from "./file_receiver.ts";
import { FolderMetadata } from "./folder_metadata.ts";
import type { Folders } from "./folders.ts";
import { type Greeting, peerError } from "./handshake.ts";
import type { ConflictPolicy, Inbox } from "./inbox.ts";
import { Planner } from "./planner.ts";
import type { Report } from "./server_events.ts";
import type { ServerLimits } from "./server_limits.ts";
import type { Tally } from "./tally.ts";
import { TextReceiver } from "./text_receiver.ts";

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
  /** `serve --ask`: asks whether to take the session, before its first batch is planned. */
  ask?: AskOptions | undefined;
}

/** What asking needs besides the question's contents. */
export interface AskOptions {
  ask: Ask;
  /** The sender's address, "ADDRESS:PORT". */
  peer: string;
  /** How long the person has, from the first ANNOUNCE (at most MAX_FIRST_PLAN_DELAY_MS). */
  timeoutMs: number;
  /** Aborts when the session is closed from outside: the question is withdrawn. */
  signal: AbortSignal;
  /** Holds the idle deadline while the person decides; the returned call releases it. */
  holdIdle(): () => void;
}

export class SessionLoop {
  #queue: AcceptedQueue;
  #planner: Planner;
  #receiver: FileReceiver;
  #acks: AckQueue;
  #metadata: FolderMetadata;
  #text = new TextReceiver();
  /** The person was asked (or there is nobody to ask): later batches go straight to the planner. */
  #asked: boolean;
  /** The next frame, read ahead while the person was asked. */
  #prefetched: Promise<Frame | null> | null = null;
  /** An ANNOUNCE came: a LIST may come no more (§5.16). */
  #announced = false;
  /** What this session listed (LIST answered), or null. */
  #listed: Listing | null = null;
  /** LISTED came. */
  #listedDone = false;

  constructor(readonly opts: SessionLoopOptions) {
    const { session, report, link, inbox, folders, greeting, onConflict, limits, tally } = opts;
    const stopIfClosed = () => opts.stopIfClosed();
    this.#asked = opts.ask === undefined;
    const bytes = new SessionBytes(limits.maxTotal);
    this.#queue = new AcceptedQueue(inbox);
    this.#metadata = new FolderMetadata(folders, greeting.resumedSince, onConflict === "update");
    const { created } = this.#metadata;
    const keepAlive = new KeepAlive(link.writer);
    this.#planner = new Planner({
      session,
      report,
      inbox,
      ensure: (parts) => folders.ensure(parts, created),
      look: (dir, name) => folders.look(dir, name),
      openFile: (dir, name) => folders.openFile(dir, name),
      ...(greeting.sync ? { keepAlive: () => keepAlive.tick() } : {}),
      limits,
      onConflict,
      digest: greeting.digest,
      resumable: greeting.resumable,
      sync: greeting.sync,
      text: greeting.text,
      resumedSince: greeting.resumedSince,
      queue: this.#queue,
      bytes,
      tally,
    });
    this.#receiver = new FileReceiver({
      session,
      report,
      folders,
      digest: greeting.digest,
      onConflict,
      maxSize: limits.maxSize,
      bytes,
      hold: () => link.reader.hold(),
      stopIfClosed,
    });
    this.#acks = new AckQueue({
      session,
      report,
      writer: link.writer,
      folders,
      onConflict,
      sync: greeting.sync,
      tally,
      stopIfClosed,
    });
  }

  /** Routes the sender's frames until DONE has been answered with BYE. */
  async run(): Promise<void> {
    const { reader } = this.opts.link;
    for (;;) {
      this.opts.stopIfClosed();
      if (reader.buffered === 0) await this.#acks.flush();
      // A frame buffered whole is taken at once; only a frame still to be read is awaited.
      let frame = this.#prefetched === null ? reader.nextBuffered() : null;
      if (frame === null) {
        const next = this.#prefetched ?? reader.next();
        this.#prefetched = null;
        frame = await next;
      }
      if (frame === null) {
        throw new ProtocolError("truncated", "the sender closed the connection before DONE");
      }
      switch (frame.type) {
        case FrameType.ANNOUNCE:
          this.#announced = true;
          await this.#announce(frame.payload);
          break;
        case FrameType.LIST:
          await this.#list(frame.payload);
          break;
        case FrameType.LISTED:
          this.#listedCounts(frame.payload);
          break;
        case FrameType.FILE_START:
          await this.#fileStart(frame.payload);
          break;
        case FrameType.DATA: {
          const head = this.#queue.head("DATA");
          if (head.entry.kind === "text") this.#text.add(head.entry, frame.payload);
          else {
            // A small file's data is held at once: no promise, nothing to wait for.
            const writing = this.#receiver.data(head, frame.payload);
            if (writing !== null) await writing;
          }
          break;
        }
        case FrameType.FILE_END: {
          const waiting = this.#fileEnd(frame.payload);
          if (waiting !== null) await waiting;
          break;
        }
        case FrameType.FILE_ABORT:
          await this.#fileAbort(frame.payload);
          break;
        case FrameType.DONE:
          await this.#done();
          return;
        case FrameType.ERROR:
          peerError(frame.payload);
          break;
        case FrameType.NOOP:
          // Activity while the sender works (feature sync); a sender without it may not send one.
          if (!this.opts.greeting.sync) unexpected(frame.type);
          break;
        default:
          unexpected(frame.type);
      }
    }
  }

  /** Lets go of what the loop holds: its file (kept as a partial if cut off), claims, reservations. */
  async release(clean: boolean): Promise<void> {
    await this.#receiver.release(clean);
    this.#acks.drop();
    this.#queue.releaseAll();
  }

  /** ANNOUNCE: the batch is decided and its PLAN sent before the next frame is read (§6.1). */
  async #announce(payload: Uint8Array): Promise<void> {
    const { writer } = this.opts.link;
    const announced = decodeAnnounce(payload);
    // A sender that left while the person was asked: the loop reads why, nothing is planned.
    if (!this.#asked && !(await this.#ask(announced.entries, announced.totals))) return;
    const plan = await this.#planner.plan(announced);
    await writer.frame(FrameType.PLAN, encodeJson(plan));
    await writer.flush();
    await this.#advance();
  }

  /** LIST (§5.16): once, before the first ANNOUNCE, in a session that agreed on "listing". */
  async #list(payload: Uint8Array): Promise<void> {
    const { greeting, link, inbox, limits } = this.opts;
    if (!greeting.listing) unexpected(FrameType.LIST);
    if (this.#listed !== null || this.#announced) {
      throw new ProtocolError("bad-sequence", "LIST after the listing or a batch");
    }
    const list = decodeList(payload);
    const native = loadNativeReader();
    // The handshake offers "listing" only where the C library lists folders.
    if (native === null || !native.lists) unexpected(FrameType.LIST);
    const sha256 = (await loadDigest("sha256", nativeDigests())).of;
    this.#listed = await sendListing(list, {
      inbox,
      writer: link.writer,
      native,
      sha256,
      sha256Into: opensslSha256Into(),
      limits,
      stopIfClosed: () => this.opts.stopIfClosed(),
    });
  }

  /** LISTED (§5.16): what the sender found here unchanged, counted as such; informative. */
  #listedCounts(payload: Uint8Array): void {
    if (!this.opts.greeting.listing) unexpected(FrameType.LISTED);
    if (this.#listed === null || this.#listedDone) {
      throw new ProtocolError("bad-sequence", "LISTED without a listing, or twice");
    }
    this.#listedDone = true;
    const listed = decodeListed(payload);
    // Bounded by what was listed: a count for people, never trusted beyond that.
    const files = Math.min(listed.files, this.#listed.files);
    this.opts.tally.unchanged += files;
    this.opts.report({
      type: "unchanged-listed",
      session: this.opts.session,
      files,
      bytes: Math.min(listed.bytes, this.#listed.bytes),
    });
  }

  async #fileStart(payload: Uint8Array): Promise<void> {
    const start = decodeFileStart(payload);
    await this.#receiver.start(this.#queue.head("FILE_START", start.id), start);
  }

  /** FILE_END: a promise only when there is something to wait for (see `#ended`). */
  #fileEnd(payload: Uint8Array): Promise<void> | null {
    const end = decodeFileEnd(payload);
    const head = this.#queue.head("FILE_END", end.id);
    return head.entry.kind === "text" ? this.#textEnded(head, end) : this.#ended(head, end);
  }

  async #fileAbort(payload: Uint8Array): Promise<void> {
    const abort = decodeFileAbort(payload);
    const head = this.#queue.head("FILE_ABORT", abort.id);
    if (head.entry.kind === "text") {
      this.#text.abandon(head.entry, abort.reason);
      await this.#textEnded(head, null);
      return;
    }
    this.#receiver.abandon(abort.reason);
    const waiting = this.#ended(head, null);
    if (waiting !== null) await waiting;
  }

  /** A text ended: checked, shown and acknowledged in its turn; nothing is stored (§5.15). */
  async #textEnded(head: Accepted, end: FileEnd | null): Promise<void> {
    const result = this.#text.end(head.entry, end, this.opts.greeting.digest);
    await this.#acks.text(head, result);
    this.#queue.finish(head);
    await this.#advance();
    if (this.#acks.full) await this.#acks.flush();
  }

  /**
   * `serve --ask`: the person decides on the session from its first batch, before anything of
   * it is planned or written (PROTOCOL.md §6.5). Declined, or no answer in time: the session
   * ends with ERROR `declined`, and a transfer marker this session made is taken back.
   */
  async #ask(entries: unknown[], totals: Totals | undefined): Promise<boolean> {
    this.#asked = true;
    const { ask, peer, timeoutMs, signal, holdIdle } = this.opts.ask!;
    const { session, greeting, inbox } = this.opts;
    const question = questionOf(
      { session, peer, host: greeting.host, deadline: Date.now() + timeoutMs },
      entries,
      totals,
    );
    const release = holdIdle();
    // The sender waits for the first PLAN, so what it sends meanwhile is read ahead (the loop takes
    // it next): its end, or an ERROR, withdraws the question at once rather than at the timeout.
    const pending = this.opts.link.reader.next();
    this.#prefetched = pending;
    const left = new AbortController();
    pending.then((f) => f === null || f.type === FrameType.ERROR, () => true).then((gone) => {
      if (gone) left.abort();
    });
    const asking = AbortSignal.any([signal, left.signal]);
    let timer: ReturnType<typeof setTimeout> | undefined;
    let accepted = false;
    try {
      accepted = await Promise.race([
        ask(question, asking),
        new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(false), timeoutMs)),
        new Promise<boolean>((resolve) => {
          if (asking.aborted) resolve(false);
          asking.addEventListener("abort", () => resolve(false), { once: true });
        }),
      ]);
    } finally {
      clearTimeout(timer);
      release();
    }
    this.opts.stopIfClosed();
    if (accepted && !left.signal.aborted) return true;
    if (greeting.transfer !== null && greeting.resumedSince === null) {
      await inbox.endTransfer(greeting.transfer);
    }
    if (left.signal.aborted) return false;
    throw new ProtocolError("declined", "declined by the receiver");
  }

  /**
   * The head file ended: the ack queue takes it, then the directories behind it get their
   * metadata. A promise only when something has to be waited for (placing, a directory next,
   * enough Acks to send): a stream of small files mostly goes on without one per file.
   */
  #ended(head: Accepted, end: FileEnd | null): Promise<void> | null {
    const placing = this.#acks.ended(head, this.#receiver.end(head, end));
    if (placing !== null) return placing.then(() => this.#finished(head) ?? undefined);
    return this.#finished(head);
  }

  /** The rest of `#ended`, once the ack queue has the file. */
  #finished(head: Accepted): Promise<void> | null {
    this.#queue.finish(head);
    if (!this.#queue.dirNext && !this.#acks.full) return null;
    return this.#advanceAndFlush();
  }

  async #advanceAndFlush(): Promise<void> {
    await this.#advance();
    if (this.#acks.full) await this.#acks.flush();
  }

  /** Sets the metadata of the directories at the head of the queue, so the next head is a file. */
  async #advance(): Promise<void> {
    for (let dir = this.#queue.takeDir(); dir !== null; dir = this.#queue.takeDir()) {
      // Its files must be in place first: placing one changes the folder's mtime.
      await this.#acks.placeHeld();
      await this.#metadata.apply(dir);
    }
  }

  /** DONE: the last Acks, then BYE, and this direction ends (PROTOCOL.md §6.4). */
  async #done(): Promise<void> {
    const { link, tally } = this.opts;
    await this.#advance();
    if (this.#queue.pending > 0) {
      throw new ProtocolError("bad-sequence", "DONE while announced files are unsent");
    }
    await this.#acks.flush(false);
    const { files, bytes, failed } = tally;
    await link.writer.frame(FrameType.BYE, encodeJson({ files, bytes, failed }));
    await link.writer.flush();
    await closeGracefully(link.stream);
  }
}

function unexpected(type: number): never {
  throw new ProtocolError(
    "unexpected-frame",
    `frame 0x${type.toString(16)} is not expected from a sender`,
  );
}
