/**
 * A WebSocket as a ByteStream (PROTOCOL.md §14): the same bytes a TCP
 * connection carries (preamble, plain frames, then records), cut into binary
 * messages whose boundaries mean nothing. The same module runs in Deno (the
 * receiver's side of `serve --web`) and in the browser (the page), on the
 * standard WebSocket API only.
 *
 * A WebSocket has no flow control a script can use: messages arrive whether
 * or not anyone reads them. So each side credits the bytes it has read with a
 * text message holding their count in decimal, and a writer keeps at most
 * WINDOW_BYTES written and not yet credited. A peer that sends past the
 * window, a binary message over MAX_MESSAGE_BYTES, or a text message that is
 * not a credit is cut off: what waits unread is bounded by the window.
 */
import { ProtocolError } from "../protocol/errors.ts";
import type { ByteStream } from "./byte_stream.ts";

/** Largest binary message either side sends or accepts. */
export const MAX_MESSAGE_BYTES = 1024 * 1024;
/** Bytes a side may have written and not yet had credited. */
export const WINDOW_BYTES = 8 * 1024 * 1024;
/** A reader credits what it read once this much has gathered (or at once when its queue is empty). */
const CREDIT_BATCH = 1024 * 1024;
/** Longest credit message: the decimal count of at most WINDOW_BYTES. */
const MAX_CREDIT_CHARS = 16;

/** The part of the WebSocket API this uses (Deno's and the browser's are the same). */
export interface SocketLike {
  binaryType: BinaryType;
  readonly readyState: number;
  send(data: string | ArrayBufferLike | ArrayBufferView): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: "message" | "close" | "error", fn: (e: { data?: unknown }) => void): void;
}

const OPEN = 1;

export class WebSocketStream implements ByteStream {
  /** Received bytes not yet read, oldest first; `#head` is how much of the first was read. */
  #queue: Uint8Array[] = [];
  #head = 0;
  #queued = 0;
  /** Read and not yet credited to the peer. */
  #uncredited = 0;
  /** Written and not yet credited by the peer. */
  #inFlight = 0;
  #ended = false;
  /** Why the stream failed (a broken rule of the peer), thrown to readers and writers. */
  #failure: Error | null = null;
  #wakeReader: (() => void) | null = null;
  #wakeWriter: (() => void) | null = null;

  /** `ws` must be open (or opening, on the server); its binaryType is set to arraybuffer. */
  constructor(readonly ws: SocketLike) {
    ws.binaryType = "arraybuffer";
    ws.addEventListener("message", (e) => this.#message(e.data));
    ws.addEventListener("close", () => this.#end());
    ws.addEventListener("error", () => this.#end());
  }

  #message(data: unknown): void {
    if (this.#ended) return;
    if (typeof data === "string") {
      const n = data.length <= MAX_CREDIT_CHARS && /^[0-9]+$/.test(data) ? Number(data) : NaN;
      if (!(n > 0 && n <= this.#inFlight)) {
        return this.#fail("bad-frame", "the peer sent a text message that is not a credit");
      }
      this.#inFlight -= n;
      this.#wake();
      return;
    }
    if (!(data instanceof ArrayBuffer)) {
      return this.#fail("bad-frame", "the peer sent a message that is not binary");
    }
    if (data.byteLength > MAX_MESSAGE_BYTES) {
      return this.#fail(
        "frame-too-large",
        `a message of ${data.byteLength} bytes is over the limit`,
      );
    }
    if (data.byteLength === 0) return;
    if (this.#queued + this.#uncredited + data.byteLength > WINDOW_BYTES) {
      return this.#fail("bad-frame", "the peer sent more than its window");
    }
    this.#queue.push(new Uint8Array(data));
    this.#queued += data.byteLength;
    this.#wake();
  }

  #fail(code: string, message: string): void {
    this.#failure = new ProtocolError(code, `WebSocket: ${message}`);
    this.close();
    this.#end();
  }

  #end(): void {
    this.#ended = true;
    this.#wake();
  }

  #wake(): void {
    const reader = this.#wakeReader;
    const writer = this.#wakeWriter;
    this.#wakeReader = this.#wakeWriter = null;
    reader?.();
    writer?.();
  }

  async read(p: Uint8Array): Promise<number | null> {
    for (;;) {
      // A broken rule ends the stream at once, whatever was queued before it.
      if (this.#failure) throw this.#failure;
      if (this.#queued > 0) break;
      if (this.#ended) return null;
      await new Promise<void>((resolve) => this.#wakeReader = resolve);
    }
    let n = 0;
    while (n < p.length && this.#queue.length > 0) {
      const first = this.#queue[0]!;
      const take = Math.min(p.length - n, first.length - this.#head);
      p.set(first.subarray(this.#head, this.#head + take), n);
      n += take;
      this.#head += take;
      if (this.#head === first.length) {
        this.#queue.shift();
        this.#head = 0;
      }
    }
    this.#queued -= n;
    this.#uncredited += n;
    if (this.#uncredited >= CREDIT_BATCH || this.#queued === 0) this.#credit();
    return n;
  }

  #credit(): void {
    if (this.#uncredited === 0 || this.ws.readyState !== OPEN) return;
    this.ws.send(String(this.#uncredited));
    this.#uncredited = 0;
  }

  async write(p: Uint8Array): Promise<number> {
    const n = Math.min(p.length, MAX_MESSAGE_BYTES);
    for (;;) {
      if (this.#failure) throw this.#failure;
      if (this.#ended || this.ws.readyState !== OPEN) {
        throw new ProtocolError("truncated", "the connection was cut");
      }
      if (this.#inFlight + n <= WINDOW_BYTES) break;
      await new Promise<void>((resolve) => this.#wakeWriter = resolve);
    }
    this.#inFlight += n;
    // A copy: the caller reuses its buffer as soon as this returns.
    this.ws.send(p.slice(0, n));
    return n;
  }

  close(): void {
    try {
      this.ws.close(1000);
    } catch { /* already closed */ }
  }
}
