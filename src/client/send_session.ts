/**
 * The sender's side of a session: handshake, then a pipeline that keeps up
 * to ANNOUNCE_WINDOW batches announced ahead, streams the accepted files
 * back to back, and collects acknowledgements on a separate reader task, so
 * no file ever waits for a round trip.
 */
import { createHash } from "node:crypto";
import { FerryError } from "../cli/errors.ts";
import { ProtocolError } from "../protocol/errors.ts";
import { encodeFileAbort, encodeFileEnd, FrameType } from "../protocol/frame.ts";
import { ANNOUNCE_WINDOW, MAX_FRAME_PAYLOAD } from "../protocol/limits.ts";
import {
  type Bye,
  type Decision,
  decodeAcks,
  decodeBye,
  decodeError,
  decodePlan,
  decodeWelcome,
  encodeJson,
  type Entry,
  type Plan,
  type Welcome,
} from "../protocol/messages.ts";
import {
  Channel,
  decodePreamble,
  encodePreamble,
  PREAMBLE_BYTES,
  PROTOCOL_VERSION,
} from "../protocol/preamble.ts";
import { FrameReader, FrameWriter } from "../transport/frame_io.ts";
import { type Address, connect, formatAddress } from "../transport/tcp.ts";
import { Watchdog } from "../transport/watchdog.ts";
import { type LocalEntry, type Source, walk, type WalkItem } from "./walk.ts";

export interface SendOptions {
  to: Address;
  sources: Source[];
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  software: string;
  onEvent: (event: SendEvent) => void;
}

export type SendEvent =
  | { type: "connected"; to: string; server: string }
  | { type: "skipped"; path: string; reason: string }
  | { type: "file-done"; path: string; name: string; bytes: number }
  | { type: "file-failed"; path: string; reason: string };

export interface SendResult {
  files: number;
  bytes: number;
  failed: number;
  skipped: number;
  seconds: number;
}

/** Batches are cut at this many bytes of JSON, well under the frame limit. */
const BATCH_BYTES = 512 * 1024;
/** Files sent but not yet acknowledged before the sender waits. */
const MAX_UNACKED = 16_384;

interface Numbered extends LocalEntry {
  id: number;
}

interface Batch {
  batch: number;
  entries: Numbered[];
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

export async function send(opts: SendOptions): Promise<SendResult> {
  const conn = await connect(opts.to, opts.connectTimeoutMs);
  const session = new SendSession(conn, opts);
  try {
    return await session.run();
  } finally {
    session.stop();
  }
}

class SendSession {
  #watchdog: Watchdog;
  #reader: FrameReader;
  #writer: FrameWriter;
  #where: string;
  #started = performance.now();
  /** Plans the reader task has not handed over yet, by batch number. */
  #plans = new Map<number, ReturnType<typeof deferred<Plan>>>();
  /** Accepted files awaiting their acknowledgement. */
  #unacked = new Map<number, Numbered>();
  #ackSignal = deferred<void>();
  #bye = deferred<Bye>();
  #failure: Error | null = null;
  #result: SendResult = { files: 0, bytes: 0, failed: 0, skipped: 0, seconds: 0 };
  #digest = "sha256";

  constructor(readonly conn: Deno.TcpConn, readonly opts: SendOptions) {
    this.#where = formatAddress(opts.to);
    this.#watchdog = new Watchdog(opts.idleTimeoutMs, () => conn.close());
    const touch = () => this.#watchdog.touch();
    this.#reader = new FrameReader(conn, touch);
    this.#writer = new FrameWriter(conn, touch);
  }

  stop(): void {
    this.#watchdog.stop();
    try {
      this.conn.close();
    } catch { /* already closed */ }
  }

  async run(): Promise<SendResult> {
    try {
      const welcome = await this.#handshake();
      this.#digest = welcome.digest;
      this.opts.onEvent({ type: "connected", to: this.#where, server: welcome.software });
      const reading = this.#readLoop();
      await this.#pipeline();
      await this.#writer.frame(FrameType.DONE, new Uint8Array(0));
      await this.#writer.flush();
      await this.#bye.promise;
      await reading;
      for (const entry of this.#unacked.values()) {
        this.#fail(entry.path, "the receiver never acknowledged it");
      }
    } catch (err) {
      throw this.#explain(err);
    }
    this.#result.seconds = (performance.now() - this.#started) / 1000;
    return this.#result;
  }

  /** The clearest error for a failed session: the server's own word first. */
  #explain(err: unknown): unknown {
    if (this.#failure) return this.#failure;
    if (this.#watchdog.expired) {
      return new FerryError(
        `${this.#where} stopped responding for ${this.opts.idleTimeoutMs / 1000} s`,
      );
    }
    if (err instanceof ProtocolError) {
      return new FerryError(`protocol error with ${this.#where}: ${err.message}`);
    }
    if (
      err instanceof Deno.errors.ConnectionReset || err instanceof Deno.errors.BrokenPipe ||
      err instanceof Deno.errors.BadResource || err instanceof Deno.errors.UnexpectedEof
    ) {
      return new FerryError(`the connection to ${this.#where} was lost`);
    }
    return err;
  }

  async #handshake(): Promise<Welcome> {
    await this.#writer.raw(encodePreamble({ version: PROTOCOL_VERSION, channel: Channel.plain }));
    await this.#writer.frame(
      FrameType.HELLO,
      encodeJson({ software: this.opts.software, digests: ["sha256"] }),
    );
    await this.#writer.flush();
    const raw = await this.#reader.readRaw(PREAMBLE_BYTES);
    if (raw === null) {
      throw new FerryError(`${this.#where} closed the connection during the handshake`);
    }
    let theirs;
    try {
      theirs = decodePreamble(raw);
    } catch {
      throw new FerryError(`${this.#where} is not a ferry server`);
    }
    if (theirs.version !== PROTOCOL_VERSION) {
      throw new FerryError(
        `${this.#where} speaks ferry protocol version ${theirs.version}, this ferry speaks ${PROTOCOL_VERSION}: use matching ferry versions`,
      );
    }
    const frame = await this.#reader.next();
    if (frame?.type === FrameType.ERROR) throw this.#serverError(frame.payload);
    if (frame?.type !== FrameType.WELCOME) {
      throw new ProtocolError("unexpected-frame", "expected WELCOME");
    }
    return decodeWelcome(frame.payload);
  }

  #serverError(payload: Uint8Array): FerryError {
    const e = decodeError(payload);
    return new FerryError(`${this.#where} refused the session: ${e.message} (${e.code})`);
  }

  /** Reads PLAN, ACK and BYE frames until the server closes. */
  async #readLoop(): Promise<void> {
    try {
      for (;;) {
        const frame = await this.#reader.next();
        if (frame === null) {
          throw new FerryError(`${this.#where} closed the connection before the transfer ended`);
        }
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
            for (const ack of decodeAcks(frame.payload).acks) {
              const entry = this.#unacked.get(ack.id);
              if (!entry) throw new ProtocolError("bad-sequence", `ACK for unknown id ${ack.id}`);
              this.#unacked.delete(ack.id);
              if (ack.ok) {
                this.#result.files++;
                this.#result.bytes += entry.size ?? 0;
                this.opts.onEvent({
                  type: "file-done",
                  path: entry.path,
                  name: ack.name ?? entry.path,
                  bytes: entry.size ?? 0,
                });
              } else if (ack.reason?.startsWith("skipped")) {
                this.#result.skipped++;
                this.opts.onEvent({ type: "skipped", path: entry.path, reason: ack.reason });
              } else {
                this.#fail(entry.path, ack.reason ?? "failed on the receiver");
              }
            }
            this.#ackSignal.resolve();
            this.#ackSignal = deferred();
            break;
          case FrameType.BYE:
            this.#bye.resolve(decodeBye(frame.payload));
            return;
          case FrameType.ERROR:
            throw this.#serverError(frame.payload);
          default:
            throw new ProtocolError(
              "unexpected-frame",
              `frame 0x${frame.type.toString(16)} is not expected from a receiver`,
            );
        }
      }
    } catch (err) {
      const failure = this.#explain(err);
      this.#failure = failure instanceof Error ? failure : new Error(String(failure));
      for (const waiting of this.#plans.values()) waiting.reject(this.#failure);
      this.#ackSignal.reject(this.#failure);
      this.#bye.reject(this.#failure);
      this.stop(); // unblocks a pending write
    }
  }

  #fail(path: string, reason: string): void {
    this.#result.failed++;
    this.opts.onEvent({ type: "file-failed", path, reason });
  }

  async #pipeline(): Promise<void> {
    const items = walk(this.opts.sources);
    let exhausted = false;
    let nextId = 0;
    let nextBatch = 0;
    const outstanding: { batch: Batch; plan: Promise<Plan> }[] = [];
    const take = async (): Promise<Numbered | null> => {
      for (;;) {
        const next: IteratorResult<WalkItem> = await items.next();
        if (next.done) return null;
        const item = next.value;
        if (item.type === "entry") return { ...item.entry, id: nextId++ };
        if (item.type === "skipped") {
          this.#result.skipped++;
          this.opts.onEvent({ type: "skipped", path: item.path, reason: item.reason });
        } else {
          this.#fail(item.path, item.reason);
        }
      }
    };
    /** Announces batches until the window is full or the walk is done. */
    const fill = async () => {
      while (!exhausted && outstanding.length < ANNOUNCE_WINDOW) {
        const entries: Numbered[] = [];
        let bytes = 0;
        while (entries.length < 4096 && bytes < BATCH_BYTES) {
          const entry = await take();
          if (entry === null) {
            exhausted = true;
            break;
          }
          entries.push(entry);
          bytes += 96 + entry.path.length * 3;
        }
        if (entries.length === 0) break;
        const batch = { batch: nextBatch++, entries };
        const waiting = deferred<Plan>();
        this.#plans.set(batch.batch, waiting);
        outstanding.push({ batch, plan: waiting.promise });
        const wire: Entry[] = entries.map(({ id, path, kind, size, mtime, mode }) => ({
          id,
          path,
          kind,
          size,
          mtime,
          mode,
        }));
        await this.#writer.frame(
          FrameType.ANNOUNCE,
          encodeJson({ batch: batch.batch, entries: wire }),
        );
      }
      await this.#writer.flush();
    };

    await fill();
    while (outstanding.length > 0) {
      const { batch, plan: planned } = outstanding.shift()!;
      await this.#writer.flush();
      const plan = await planned;
      if (plan.decisions.length !== batch.entries.length) {
        throw new ProtocolError("bad-message", `plan ${plan.batch} does not match its batch`);
      }
      for (let i = 0; i < batch.entries.length; i++) {
        const entry = batch.entries[i];
        const decision = plan.decisions[i];
        if (decision.id !== entry.id) {
          throw new ProtocolError("bad-message", `plan ${plan.batch} is out of order`);
        }
        await this.#follow(entry, decision);
        if (outstanding.length < ANNOUNCE_WINDOW - 1 && !exhausted) await fill();
      }
      await fill();
    }
  }

  async #follow(entry: Numbered, decision: Decision): Promise<void> {
    if (decision.action === "skip") {
      this.#result.skipped++;
      this.opts.onEvent({
        type: "skipped",
        path: entry.path,
        reason: `skipped by the receiver: ${decision.reason ?? "no reason given"}`,
      });
      return;
    }
    if (decision.action === "refuse") {
      this.#fail(entry.path, `refused by the receiver: ${decision.reason ?? "no reason given"}`);
      return;
    }
    if (entry.kind === "dir") return;
    if ((decision.offset ?? 0) !== 0) {
      throw new ProtocolError("bad-message", "the receiver asked for an offset; not supported");
    }
    while (this.#unacked.size >= MAX_UNACKED) {
      await this.#writer.flush();
      await this.#ackSignal.promise;
    }
    this.#unacked.set(entry.id, entry);
    await this.#stream(entry);
  }

  /** Sends one file's bytes, then FILE_END, or FILE_ABORT if it could not be read whole. */
  async #stream(entry: Numbered): Promise<void> {
    const abort = async (reason: string) => {
      await this.#writer.frame(FrameType.FILE_ABORT, encodeFileAbort({ id: entry.id, reason }));
    };
    let file: { read(p: Uint8Array): Promise<number | null> };
    let opened: Deno.FsFile | null = null;
    if (entry.source === null) {
      file = Deno.stdin;
    } else {
      try {
        opened = await Deno.open(entry.source, { read: true });
        const info = await opened.stat();
        if (info.size !== entry.size || (info.mtime?.getTime() ?? entry.mtime) !== entry.mtime) {
          opened.close();
          return await abort("changed after it was listed");
        }
      } catch (err) {
        opened?.close();
        return await abort(`cannot read it: ${describeReadError(err)}`);
      }
      file = opened;
    }
    const hash = createHash(this.#digest);
    let sent = 0;
    try {
      for (;;) {
        const want = entry.size === null
          ? MAX_FRAME_PAYLOAD
          : Math.min(MAX_FRAME_PAYLOAD, entry.size - sent);
        if (want === 0) break;
        const room = await this.#writer.reserve(want);
        const n = await file.read(room);
        if (n === null) {
          if (entry.size !== null) return await abort("it shrank while being sent");
          break;
        }
        hash.update(room.subarray(0, n));
        this.#writer.commit(FrameType.DATA, n);
        sent += n;
      }
      if (opened) {
        const info = await opened.stat();
        if (info.size !== entry.size || (info.mtime?.getTime() ?? entry.mtime) !== entry.mtime) {
          return await abort("it changed while being sent");
        }
      }
    } catch (err) {
      if (this.#failure || !(err instanceof Deno.errors.PermissionDenied || isReadError(err))) {
        throw err;
      }
      return await abort(`cannot read it: ${describeReadError(err)}`);
    } finally {
      opened?.close();
    }
    if (entry.size === null) entry.size = sent;
    await this.#writer.frame(
      FrameType.FILE_END,
      encodeFileEnd({ id: entry.id, length: sent, digest: new Uint8Array(hash.digest()) }),
    );
  }
}

function isReadError(err: unknown): boolean {
  return err instanceof Error && /os error (5|21)\b|input\/output/i.test(err.message);
}

function describeReadError(err: unknown): string {
  if (err instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (err instanceof Deno.errors.NotFound) return "it vanished";
  return err instanceof Error ? err.message : String(err);
}
