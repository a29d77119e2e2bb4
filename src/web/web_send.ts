/**
 * The page's sender (`serve --web`): the ferry protocol over a WebSocket
 * (src/transport/websocket_stream.ts), from the browser's File objects. It is
 * the command-line sender's session with two pieces swapped: the connection
 * is a WebSocket instead of TCP, and files are read from Blobs instead of
 * paths. The handshake (CPace on the code, the record layer), the announce,
 * plan and ACK pipeline, the replies, the digests, resume and reconnecting
 * are the client's own modules. Platform-neutral: the page runs it, and so
 * do the Deno tests (tests/web_socket_test.ts), with Deno's WebSocket and File.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { ConnectFailed } from "../errors.ts";
import { type Digest, PrefixHash } from "../protocol/digests.ts";
import type { ProtocolError } from "../protocol/errors.ts";
import { encodeFileAbort, encodeFileEnd, encodeFileStart, FrameType } from "../protocol/frame.ts";
import { MAX_FRAME_PAYLOAD } from "../protocol/limits.ts";
import { encodeJson } from "../protocol/messages.ts";
import { isConnectionError } from "../transport/connection_errors.ts";
import type { FrameWriter } from "../transport/frame_io.ts";
import { FramedLink } from "../transport/framed_link.ts";
import { Watchdog } from "../transport/watchdog.ts";
import { WebSocketStream } from "../transport/websocket_stream.ts";
import { handshake } from "../client/handshake.ts";
import { FirstPlanWait } from "../client/first_plan_wait.ts";
import { Pipeline } from "../client/pipeline.ts";
import { withReconnects } from "../client/reconnect.ts";
import { ReplyReader } from "../client/reply_reader.ts";
import { SendErrors } from "../client/send_errors.ts";
import {
  noResult,
  type Numbered,
  Outcomes,
  type SendEvent,
  type SendResult,
} from "../client/send_types.ts";
import type { WalkItem } from "../client/walk.ts";

/** A file the person picked, and its path on the receiver ("photos/a.jpg"). */
export interface PickedFile {
  path: string;
  file: File;
}

export interface WebSendOptions {
  /** The receiver's WebSocket, e.g. ws://192.168.1.20:4456/ferry. */
  url: string;
  code: string | null;
  files: PickedFile[];
  /** Reconnections after a dropped connection. */
  retries: number;
  /** First wait before reconnecting (doubles up to 30 s). */
  retryDelayMs?: number;
  idleTimeoutMs: number;
  connectTimeoutMs: number;
  software: string;
  onEvent: (event: SendEvent) => void;
  /** Opens the WebSocket (default: `new WebSocket(url)`; tests add the page's Origin). */
  socket?: (url: string) => WebSocket;
}

/** Bytes read from a Blob at a time (then cut into frames). */
const READ_BYTES = 4 * 1024 * 1024;

export async function webSend(opts: WebSendOptions): Promise<SendResult> {
  const started = performance.now();
  const total = noResult();
  const byPath = new Map(opts.files.map((f) => [f.path, f.file]));
  const transfer = transferId(opts.files);
  return await withReconnects({
    retries: opts.retries,
    firstDelayMs: opts.retryDelayMs,
    onRetry: (attempt, delayMs, reason) =>
      opts.onEvent({ type: "retry", attempt, delayMs, reason }),
  }, async (attempt) => {
    const ws = await openSocket(opts.url, opts.connectTimeoutMs, opts.socket);
    const session = new WebSession(new WebSocketStream(ws), opts, byPath, transfer, attempt);
    try {
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
      total.files += session.tally.files;
      total.bytes += session.tally.bytes;
      total.resumedBytes += session.tally.resumedBytes;
      throw err;
    } finally {
      session.stop();
    }
  });
}

/**
 * Names the transfer by its files (paths, sizes, modification times): the
 * same pick after a dropped connection or a reload of the page is the same
 * transfer, so the receiver resumes it.
 */
export function transferId(files: PickedFile[]): string {
  const list = files.map((f) => [f.path, f.file.size, f.file.lastModified]);
  return bytesToHex(sha256(new TextEncoder().encode(JSON.stringify(["web", list])))).slice(0, 32);
}

function openSocket(
  url: string,
  timeoutMs: number,
  socket: (url: string) => WebSocket = (url) => new WebSocket(url),
): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    let ws: WebSocket;
    try {
      ws = socket(url);
    } catch (err) {
      reject(new ConnectFailed("failed", `cannot connect to ${url}: ${(err as Error).message}`));
      return;
    }
    const timer = setTimeout(() => {
      ws.close();
      reject(new ConnectFailed("timeout", `no answer from ${url} within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    ws.addEventListener("open", () => {
      clearTimeout(timer);
      resolve(ws);
    });
    ws.addEventListener("close", () => {
      clearTimeout(timer);
      reject(new ConnectFailed("connect-refused", `could not connect to ${url}`));
    });
  });
}

async function* listed(files: PickedFile[]): AsyncGenerator<WalkItem> {
  for (const { path, file } of files) {
    yield {
      type: "entry",
      entry: {
        path,
        source: path,
        kind: "file",
        size: file.size,
        mtime: file.lastModified || Date.now(),
        mode: 0o644,
      },
    };
  }
}

/** One connection: the handshake, the transfer, DONE and BYE (send_session.ts's SendSession). */
class WebSession {
  #watchdog: Watchdog;
  #link: FramedLink;
  #errors: SendErrors;
  #replies: ReplyReader | null = null;
  /** The longer wait for the first PLAN (`serve --ask`). */
  #firstPlan: FirstPlanWait | null = null;
  #outcomes: Outcomes;

  constructor(
    readonly conn: WebSocketStream,
    readonly opts: WebSendOptions,
    readonly files: Map<string, File>,
    readonly transfer: string,
    readonly attempt: number,
  ) {
    this.#errors = new SendErrors(new URL(opts.url).host, opts.idleTimeoutMs, attempt);
    this.#watchdog = new Watchdog(opts.idleTimeoutMs, () => conn.close());
    this.#link = new FramedLink(conn, () => this.#watchdog.touch());
    this.#outcomes = new Outcomes(opts.onEvent);
  }

  get tally(): SendResult {
    return this.#outcomes.tally;
  }

  stop(): void {
    this.#firstPlan?.stop();
    this.#watchdog.stop();
    this.conn.close();
  }

  async run(): Promise<SendResult> {
    try {
      const agreed = await handshake(this.#link, {
        software: this.opts.software,
        transfer: this.transfer,
        code: this.opts.code,
        plaintext: false,
        // The page computes SHA-256 only (no xxh128 WebAssembly in it).
        digests: ["sha256"],
      }, this.#errors);
      this.opts.onEvent({
        type: "connected",
        to: this.#errors.where,
        server: agreed.welcome.software,
        attempt: this.attempt,
        cipher: agreed.cipher,
        digest: agreed.digest.name,
      });
      const { reader, writer } = this.#link;
      const firstPlan = new FirstPlanWait(
        this.#errors,
        this.#watchdog,
        this.opts.idleTimeoutMs,
        this.opts.onEvent,
      );
      this.#firstPlan = firstPlan;
      const replies = new ReplyReader(reader, this.#errors, {
        planned: () => firstPlan.planned(),
        acknowledged: (ack) => pipeline.acknowledged(ack),
        explain: (err) => this.#explainFailure(err),
        close: () => this.conn.close(),
      });
      const sender = new BlobSender(writer, agreed.digest, this.#outcomes.emit, this.files);
      let bytes = 0;
      for (const file of this.files.values()) bytes += file.size;
      const totals = { files: this.files.size, bytes };
      const pipeline = new Pipeline(writer, replies, sender, this.#outcomes, {
        limits: agreed.welcome.limits,
        resume: agreed.resume,
        totals: () => totals,
      });
      this.#replies = replies;
      replies.start();
      await pipeline.run(listed(this.opts.files));
      await writer.frame(FrameType.DONE, new Uint8Array(0));
      await writer.flush();
      await replies.bye();
      await replies.reading;
      await this.#link.stream.closeWrite?.().catch(() => {});
      for (const entry of pipeline.unacknowledged) {
        this.#outcomes.failed(entry.path, "the receiver never acknowledged it");
      }
    } catch (err) {
      const reading = this.#replies?.reading ?? Promise.resolve();
      if (!this.#replies?.failure && isConnectionError(err)) {
        await Promise.race([reading, new Promise((r) => setTimeout(r, 500))]);
      }
      throw this.#replies?.failure ?? await this.#explainFailure(err);
    }
    return this.tally;
  }

  async #explainFailure(err: unknown): Promise<unknown> {
    const expired = this.#watchdog.expired;
    if (SendErrors.tellsReceiver(err, expired)) await this.#sendError(err);
    return this.#errors.explain(err, expired);
  }

  async #sendError(err: ProtocolError): Promise<void> {
    const writer = this.#link.writer;
    if (writer.busy) return;
    try {
      await writer.frame(FrameType.ERROR, encodeJson({ code: err.code, message: err.message }));
      await writer.flush();
    } catch { /* gone already */ }
  }
}

/**
 * One accepted file from its Blob (file_sender.ts's FileSender for paths):
 * FILE_START when the receiver offered a resume and the held prefix's
 * SHA-256 is ours, the rest in DATA frames, FILE_END with the length and
 * the session's digest; FILE_ABORT when the browser cannot read it.
 */
class BlobSender {
  constructor(
    readonly writer: FrameWriter,
    readonly digest: Digest,
    readonly emit: (event: SendEvent) => void,
    readonly files: Map<string, File>,
  ) {}

  async send(entry: Numbered, offer: number, prefix: string | undefined): Promise<void> {
    const file = this.files.get(entry.path);
    if (file === undefined || entry.size === null) {
      return await this.#abort(entry, "it is not among the picked files");
    }
    const size = entry.size;
    let hash = this.digest.hasher();
    let sent = 0;
    try {
      if (offer > 0) {
        const resumed = offer <= size && prefix !== undefined
          ? await this.#resumePoint(file, offer, prefix)
          : null;
        if (resumed !== null) {
          hash = resumed.hash;
          sent = offer;
        }
        await this.writer.frame(
          FrameType.FILE_START,
          encodeFileStart({ id: entry.id, offset: sent }),
        );
        entry.resumed = sent;
      }
      this.emit({ type: "file-start", path: entry.path, size, resumed: sent });
      // The next chunk is read while this one is hashed, sealed and sent.
      const read = (at: number) => {
        if (at >= size) return null;
        const reading = file.slice(at, Math.min(size, at + READ_BYTES)).arrayBuffer();
        reading.catch(() => {}); // handled where it is awaited, if the file gets that far
        return reading;
      };
      let next = read(sent);
      while (sent < size) {
        const chunk = new Uint8Array(await next!);
        next = read(sent + chunk.length);
        if (chunk.length === 0) return await this.#abort(entry, "it shrank while being sent");
        for (let at = 0; at < chunk.length;) {
          const room = await this.writer.reserve(Math.min(MAX_FRAME_PAYLOAD, chunk.length - at));
          const n = room.length;
          room.set(chunk.subarray(at, at + n));
          hash.update(room.subarray(0, n));
          this.writer.commit(FrameType.DATA, n);
          at += n;
          this.emit({ type: "progress", bytes: n });
        }
        sent += chunk.length;
      }
    } catch (err) {
      if (isConnectionError(err) || !isReadError(err)) throw err;
      return await this.#abort(entry, `cannot read it: ${(err as Error).message}`);
    }
    await this.writer.frame(
      FrameType.FILE_END,
      encodeFileEnd({ id: entry.id, length: sent, digest: hash.digest() }),
    );
  }

  #abort(entry: Numbered, reason: string): Promise<void> {
    return this.writer.frame(FrameType.FILE_ABORT, encodeFileAbort({ id: entry.id, reason }));
  }

  /** The offered prefix's hash state, if its SHA-256 is the receiver's `prefix` (PROTOCOL.md §7). */
  async #resumePoint(file: File, offer: number, prefix: string) {
    const hashing = new PrefixHash(this.digest);
    for (let at = 0; at < offer;) {
      const chunk = new Uint8Array(
        await file.slice(at, Math.min(offer, at + READ_BYTES)).arrayBuffer(),
      );
      if (chunk.length === 0) return null;
      hashing.update(chunk);
      at += chunk.length;
    }
    const { hash, proof } = hashing.finish();
    return proof === prefix ? { hash } : null;
  }
}

/** The browser could not read a picked file (it changed or vanished since it was picked). */
function isReadError(err: unknown): boolean {
  return err instanceof DOMException &&
    (err.name === "NotReadableError" || err.name === "NotFoundError");
}
