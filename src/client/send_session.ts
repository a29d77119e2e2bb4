/**
 * The sender's side: a session is a handshake, then a pipeline that keeps
 * a batch announced ahead of the one it sends, streams the accepted files
 * back to back, and collects acknowledgements on a separate reader task, so
 * no file ever waits for a round trip.
 *
 * `send()` runs sessions until the transfer is complete: after a dropped
 * connection it reconnects (with backoff) and the receiver's plan tells it
 * what it already has and where partial files resume.
 */
import { createHash } from "node:crypto";
import { FerryError } from "../errors.ts";
import { ProtocolError } from "../protocol/errors.ts";
import { FrameType } from "../protocol/frame.ts";
import { ANNOUNCE_WINDOW, MAX_FRAME_PAYLOAD } from "../protocol/limits.ts";
import type { Digest, DigestName } from "../protocol/digests.ts";
import {
  type Ack,
  type Bye,
  type Decision,
  decodeAcks,
  decodeBye,
  decodePlan,
  encodeJson,
  type Entry,
  type Plan,
  type Totals,
} from "../protocol/messages.ts";
import { FramedLink } from "../transport/framed_link.ts";
import { type Address, connect, formatAddress } from "../transport/tcp.ts";
import { isConnectionError } from "../transport/connection_errors.ts";
import { Watchdog } from "../transport/watchdog.ts";
import { handshake } from "./handshake.ts";
import { withReconnects } from "./reconnect.ts";
import { SendErrors } from "./send_errors.ts";
import { FileSender } from "./file_sender.ts";
import { noResult, type Numbered, type SendEvent, type SendResult } from "./send_types.ts";
import { type Source, walk, type WalkItem } from "./walk.ts";

export type { SendEvent, SendResult } from "./send_types.ts";

export interface SendOptions {
  to: Address;
  sources: Source[];
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  /** Reconnections after a dropped connection. */
  retries: number;
  /** The receiver's code (null or absent: none given). */
  code?: string | null;
  /** Use the plain channel (no code, no encryption); the receiver must allow it. */
  plaintext?: boolean;
  /** First backoff before reconnecting; doubles each time, up to 30 s. */
  retryDelayMs?: number;
  /** The digests to offer, best first (default: DIGEST_NAMES, sha256 first). */
  digests?: readonly DigestName[];
  /** The sources' totals once counted (send.ts's second walk), else null; told to the receiver. */
  totals?: () => Totals | null;
  software: string;
  onEvent: (event: SendEvent) => void;
}

const encoder = new TextEncoder();

/**
 * Batches are cut at this many entries (or fewer, if the receiver says so).
 * Up to OPEN_BATCHES batches are in flight, and their entries stay alive on
 * both sides until their files are acknowledged: 4 × 4096 of them kept each
 * process's heap (and RSS) growing on a 100,000-file tree, while 512 is as
 * fast and keeps it flat (docs/PERFORMANCE.md).
 */
const BATCH_ENTRIES = 512;
/**
 * Batches open at once, the one being sent included: one more is announced
 * while a batch streams. The protocol allows ANNOUNCE_WINDOW (4); 2 keeps
 * fewer entries alive, at a cost in speed within the bench's noise
 * (docs/PERFORMANCE.md).
 */
const OPEN_BATCHES = Math.min(2, ANNOUNCE_WINDOW);
/** Batches are cut at this many bytes of JSON (or the receiver's frame bound less 64). */
const BATCH_BYTES = 512 * 1024;
/** Files sent but not yet acknowledged before the sender waits (4 × the receiver's ACK batch). */
const MAX_UNACKED = 2048;
/** Damaged files kept for a second try; beyond this they are reported failed. */
const MAX_RESENDS = 10_000;

export async function send(opts: SendOptions): Promise<SendResult> {
  const started = performance.now();
  const total = noResult();
  const transfer = await transferId(opts);
  const reconnects = {
    retries: opts.retries,
    firstDelayMs: opts.retryDelayMs,
    onRetry: (attempt: number, delayMs: number, reason: string) =>
      opts.onEvent({ type: "retry", attempt, delayMs, reason }),
  };
  return await withReconnects(reconnects, async (attempt) => {
    let session: SendSession | null = null;
    try {
      const conn = await connect(opts.to, opts.connectTimeoutMs);
      session = new SendSession(conn, opts, transfer, attempt);
      const tally = await session.run();
      total.files += tally.files;
      total.bytes += tally.bytes;
      total.resumedBytes += tally.resumedBytes;
      total.already = Math.max(0, tally.already - (total.files - tally.files));
      total.skipped = tally.skipped;
      total.failed = tally.failed;
      total.seconds = (performance.now() - started) / 1000;
      return total;
    } catch (err) {
      if (session) {
        const tally = session.tally;
        total.files += tally.files;
        total.bytes += tally.bytes;
        total.resumedBytes += tally.resumedBytes;
      }
      throw err;
    } finally {
      session?.stop();
    }
  });
}

/**
 * Names this transfer (this host, these sources) the same way on every run,
 * so the receiver can tell a rerun after an interruption (resume) from a new
 * transfer (a new copy). The receiver is not part of it: each receiver keeps
 * its own record, and the same receiver may be reached by another address.
 */
async function transferId(opts: SendOptions): Promise<string> {
  let host = "";
  try {
    host = Deno.hostname();
  } catch { /* not permitted: the sources and target still name it */ }
  const sources = await Promise.all(opts.sources.map(async (s) => {
    const real = s.info === null ? "-" : await Deno.realPath(s.arg).catch(() => s.arg);
    return [real, s.name];
  }));
  return createHash("sha256")
    .update(JSON.stringify([host, sources]))
    .digest("hex")
    .slice(0, 32);
}

interface Batch {
  batch: number;
  entries: Numbered[];
  plan: Promise<Plan>;
}

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {}); // rejections are observed where awaited
  return { promise, resolve, reject };
}

class SendSession {
  #watchdog: Watchdog;
  /** The connection's frames: plain, then (channel 1) inside the secure channel's records. */
  #link: FramedLink;
  #errors: SendErrors;
  /** Plans the reader task has not handed over yet, by batch number. */
  #plans = new Map<number, ReturnType<typeof deferred<Plan>>>();
  /** Accepted files awaiting their acknowledgement. */
  #unacked = new Map<number, Numbered>();
  #ackSignal = deferred<void>();
  #bye = deferred<Bye>();
  #failure: Error | null = null;
  #reading: Promise<void> = Promise.resolve();
  /** The digest WELCOME chose; set before any file. */
  #digest: Digest | null = null;
  /** Sends each accepted file; made once the handshake has settled the digest. */
  #files: FileSender | null = null;
  #resume = false;
  #batchEntries = BATCH_ENTRIES;
  #batchBytes = BATCH_BYTES;
  #maxFrame = MAX_FRAME_PAYLOAD;
  /** An entry taken from the walk that did not fit its batch: it opens the next one. */
  #carry: Numbered | null = null;
  #nextId = 0;
  #nextBatch = 0;
  /** Files that arrived damaged, to send once more. */
  #resends: Numbered[] = [];
  /** What this session's walk yielded so far, and whether it has ended (then these are the totals). */
  #walked: Totals = { files: 0, bytes: 0 };
  #walkEnded = false;
  /** An ANNOUNCE of this session carried the totals. */
  #totalsSent = false;
  readonly tally: SendResult = noResult();

  constructor(
    readonly conn: Deno.TcpConn,
    readonly opts: SendOptions,
    readonly transfer: string,
    readonly attempt: number,
  ) {
    this.#errors = new SendErrors(formatAddress(opts.to), opts.idleTimeoutMs, attempt);
    this.#watchdog = new Watchdog(opts.idleTimeoutMs, () => this.#close());
    this.#link = new FramedLink(conn, () => this.#watchdog.touch());
  }

  stop(): void {
    this.#watchdog.stop();
    this.#close();
  }

  #close(): void {
    try {
      this.conn.close();
    } catch { /* already closed */ }
  }

  async run(): Promise<SendResult> {
    try {
      const agreed = await handshake(this.#link, {
        software: this.opts.software,
        transfer: this.transfer,
        code: this.opts.code ?? null,
        plaintext: this.opts.plaintext === true,
        digests: this.opts.digests,
      }, this.#errors);
      const { limits } = agreed.welcome;
      this.#digest = agreed.digest;
      this.#resume = agreed.resume;
      this.#batchEntries = Math.min(BATCH_ENTRIES, limits.maxBatchEntries);
      this.#maxFrame = limits.maxFrame;
      this.#batchBytes = Math.min(BATCH_BYTES, limits.maxFrame - 64);
      this.opts.onEvent({
        type: "connected",
        to: this.#errors.where,
        server: agreed.welcome.software,
        attempt: this.attempt,
        cipher: agreed.cipher,
        digest: agreed.digest.name,
      });
      this.#files = new FileSender(
        this.#link.writer,
        this.#digest!,
        this.opts.onEvent,
        () => this.#failure !== null,
      );
      this.#reading = this.#readLoop();
      await this.#pipeline();
      await this.#link.writer.frame(FrameType.DONE, new Uint8Array(0));
      await this.#link.writer.flush();
      await this.#bye.promise;
      await this.#reading;
      // End our direction with the channel's authenticated close record (best effort: all is done).
      await this.#link.stream.closeWrite?.().catch(() => {});
      for (const entry of this.#unacked.values()) {
        this.#fail(entry.path, "the receiver never acknowledged it");
      }
    } catch (err) {
      throw await this.#explain(err);
    }
    return this.tally;
  }

  /** The clearest error for a failed session: the receiver's own word first. */
  async #explain(err: unknown): Promise<unknown> {
    if (!this.#failure && isConnectionError(err)) {
      // A write failed; the receiver may have said why just before closing. Give the reader a moment.
      await Promise.race([this.#reading, new Promise((r) => setTimeout(r, 500))]);
    }
    return this.#failure ?? await this.#explainFailure(err);
  }

  /** A failure in words (SendErrors.explain); the receiver hears of its protocol error first. */
  async #explainFailure(err: unknown): Promise<unknown> {
    const expired = this.#watchdog.expired;
    if (SendErrors.tellsReceiver(err, expired)) await this.#sendError(err);
    return this.#errors.explain(err, expired);
  }

  /** Tells the receiver about its protocol error before closing. */
  async #sendError(err: ProtocolError): Promise<void> {
    if (this.#link.writer.busy) return;
    try {
      await this.#link.writer.frame(
        FrameType.ERROR,
        encodeJson({ code: err.code, message: err.message }),
      );
      await this.#link.writer.flush();
    } catch { /* gone already */ }
  }

  /** Reads PLAN, ACK and BYE frames until the server closes. */
  async #readLoop(): Promise<void> {
    try {
      for (;;) {
        const frame = await this.#link.reader.next();
        if (frame === null) throw this.#errors.closedEarly();
        switch (frame.type) {
          case FrameType.PLAN: {
            const plan = decodePlan(frame.payload);
            const waiting = this.#plans.get(plan.batch);
            if (!waiting) throw new ProtocolError("bad-sequence", `unexpected plan ${plan.batch}`);
            this.#plans.delete(plan.batch);
            waiting.resolve(plan);
            break;
          }
          case FrameType.ACK:
            for (const ack of decodeAcks(frame.payload).acks) this.#acknowledged(ack);
            this.#ackSignal.resolve();
            this.#ackSignal = deferred();
            break;
          case FrameType.BYE:
            this.#bye.resolve(decodeBye(frame.payload));
            return;
          case FrameType.ERROR:
            throw this.#errors.stopped(frame.payload);
          default:
            throw new ProtocolError(
              "unexpected-frame",
              `frame 0x${frame.type.toString(16)} is not expected from a receiver`,
            );
        }
      }
    } catch (err) {
      const failure = err instanceof FerryError ? err : await this.#explainFailure(err);
      this.#failure = failure instanceof Error ? failure : new Error(String(failure));
      for (const waiting of this.#plans.values()) waiting.reject(this.#failure);
      this.#ackSignal.reject(this.#failure);
      this.#bye.reject(this.#failure);
      this.#close(); // unblocks a pending write
    }
  }

  #acknowledged(ack: Ack): void {
    const entry = this.#unacked.get(ack.id);
    if (!entry) throw new ProtocolError("bad-sequence", `ACK for unknown id ${ack.id}`);
    this.#unacked.delete(ack.id);
    if (ack.ok) {
      const resumed = entry.resumed ?? 0;
      const bytes = (entry.size ?? 0) - resumed;
      this.tally.files++;
      this.tally.bytes += bytes;
      this.tally.resumedBytes += resumed;
      this.opts.onEvent({
        type: "file-done",
        path: entry.path,
        name: ack.name ?? entry.path,
        bytes,
        resumed,
      });
    } else if (ack.skipped) {
      this.tally.skipped++;
      this.opts.onEvent({
        type: "skipped",
        path: entry.path,
        reason: `skipped by the receiver: ${ack.reason ?? "already exists"}`,
      });
    } else if (ack.retry && !entry.resend && this.#resends.length < MAX_RESENDS) {
      this.opts.onEvent({
        type: "warning",
        message: `${entry.path} arrived damaged (${ack.reason}); sending it again`,
      });
      this.#resends.push({ ...entry, resend: true });
    } else {
      this.#fail(entry.path, ack.reason ?? "failed on the receiver");
    }
  }

  #fail(path: string, reason: string): void {
    this.tally.failed++;
    this.opts.onEvent({ type: "file-failed", path, reason });
  }

  /** Announces batches from `source` until the window is full or it runs dry. */
  async #fill(
    outstanding: Batch[],
    take: () => Promise<Numbered | null>,
  ): Promise<boolean> {
    let announced = false;
    let more = true;
    while (more && outstanding.length < OPEN_BATCHES) {
      const entries: Numbered[] = [];
      const wire: Entry[] = [];
      let bytes = 64;
      while (entries.length < this.#batchEntries) {
        const entry = this.#carry ?? await take();
        this.#carry = null;
        if (entry === null) {
          more = false;
          break;
        }
        const { id, path, kind, size, mtime, mode } = entry;
        const item = { id, path, kind, size, mtime, mode };
        const itemBytes = encoder.encode(JSON.stringify(item)).length + 1;
        if (entries.length === 0 && 64 + itemBytes > this.#maxFrame) {
          this.#fail(path, "its name is too long for the receiver's message limit");
          continue;
        }
        if (bytes + itemBytes > this.#batchBytes && entries.length > 0) {
          this.#carry = entry; // opens the next batch
          break;
        }
        entries.push(entry);
        wire.push(item);
        bytes += itemBytes;
      }
      if (entries.length === 0) break;
      const batch = this.#nextBatch++;
      const waiting = deferred<Plan>();
      this.#plans.set(batch, waiting);
      outstanding.push({ batch, entries, plan: waiting.promise });
      await this.#link.writer.frame(FrameType.ANNOUNCE, this.#announce(batch, wire));
      announced = true;
    }
    if (announced) await this.#link.writer.flush();
    return more;
  }

  /**
   * An ANNOUNCE's payload: with the totals (PROTOCOL.md §5.4) on the first
   * one after they are known (counted, or this walk has ended), if they fit.
   */
  #announce(batch: number, entries: Entry[]): Uint8Array {
    const totals = this.#totalsSent
      ? null
      : this.opts.totals?.() ?? (this.#walkEnded ? this.#walked : null);
    if (totals !== null) {
      const payload = encodeJson({ batch, entries, totals });
      if (payload.length <= this.#maxFrame) {
        this.#totalsSent = true;
        return payload;
      }
    }
    return encodeJson({ batch, entries });
  }

  async #pipeline(): Promise<void> {
    const items = walk(this.opts.sources);
    const fromWalk = async (): Promise<Numbered | null> => {
      for (;;) {
        const next: IteratorResult<WalkItem> = await items.next();
        if (next.done) {
          this.#walkEnded = true;
          return null;
        }
        const item = next.value;
        if (item.type === "entry") {
          if (item.entry.kind === "file") {
            const { bytes } = this.#walked;
            this.#walked.files++;
            this.#walked.bytes = bytes === null || item.entry.size === null
              ? null
              : bytes + item.entry.size;
          }
          return { ...item.entry, id: this.#nextId++ };
        }
        if (item.type === "skipped") {
          this.tally.skipped++;
          this.opts.onEvent({ type: "skipped", path: item.path, reason: item.reason });
        } else {
          this.#fail(item.path, item.reason);
        }
      }
    };
    await this.#run(fromWalk);
    // Files that arrived damaged get one more try, once all acknowledgements are in.
    while (true) {
      await this.#allAcknowledged();
      if (this.#resends.length === 0) break;
      const again = this.#resends.splice(0).map((e) => ({ ...e, id: this.#nextId++ }));
      await this.#run(() => Promise.resolve(again.shift() ?? null));
    }
  }

  /** Announces everything `take` yields and streams the accepted files. */
  async #run(take: () => Promise<Numbered | null>): Promise<void> {
    const outstanding: Batch[] = [];
    let more = await this.#fill(outstanding, take);
    while (outstanding.length > 0) {
      const { batch, entries, plan: planned } = outstanding[0];
      await this.#link.writer.flush();
      const plan = await planned;
      if (plan.decisions.length !== entries.length) {
        throw new ProtocolError("bad-message", `plan ${batch} does not match its batch`);
      }
      for (let i = 0; i < entries.length; i++) {
        if (plan.decisions[i].id !== entries[i].id) {
          throw new ProtocolError("bad-message", `plan ${batch} is out of order`);
        }
        await this.#follow(entries[i], plan.decisions[i]);
        // Keep the receiver's plans coming while this batch streams.
        if (more && outstanding.length < OPEN_BATCHES) {
          more = await this.#fill(outstanding, take);
        }
      }
      outstanding.shift();
      if (more) more = await this.#fill(outstanding, take);
    }
  }

  async #allAcknowledged(): Promise<void> {
    while (this.#unacked.size > 0) {
      await this.#link.writer.flush();
      await this.#ackSignal.promise;
    }
  }

  async #follow(entry: Numbered, decision: Decision): Promise<void> {
    switch (decision.action) {
      case "have":
        this.tally.already++;
        this.opts.onEvent({ type: "already", path: entry.path, bytes: entry.size ?? 0 });
        return;
      case "skip":
        this.tally.skipped++;
        this.opts.onEvent({
          type: "skipped",
          path: entry.path,
          reason: `skipped by the receiver: ${decision.reason ?? "no reason given"}`,
        });
        return;
      case "refuse":
        this.#fail(entry.path, `refused by the receiver: ${decision.reason ?? "no reason given"}`);
        return;
    }
    if (entry.kind === "dir") return;
    const offset = decision.offset ?? 0;
    if (offset > 0 && (!this.#resume || entry.size === null || offset > entry.size)) {
      throw new ProtocolError("bad-message", "the receiver offered a resume that cannot be");
    }
    while (this.#unacked.size >= MAX_UNACKED) {
      await this.#link.writer.flush();
      await this.#ackSignal.promise;
    }
    this.#unacked.set(entry.id, entry);
    await this.#files!.send(entry, offset, decision.prefix);
  }
}
