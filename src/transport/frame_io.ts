/**
 * Buffered frame I/O over a ByteStream. The reader hands out payload views
 * into its own buffer (valid until the next `next()`, or, with `hold()`,
 * until released), so data frames are never copied; the writer packs small
 * frames into one write and lets data be read straight into its buffer.
 */
import { ProtocolError } from "../protocol/errors.ts";
import { type FrameTypeCode, parseHeader, writeHeader } from "../protocol/frame.ts";
import { FRAME_HEADER_BYTES, MAX_FRAME_PAYLOAD } from "../protocol/limits.ts";
import { type ByteStream, writeAll } from "./byte_stream.ts";
import { ioBuffer } from "./io_buffer.ts";

export interface Frame {
  type: FrameTypeCode;
  /** A view into the reader's buffer, valid until the next call to `next()` (see `hold()`). */
  payload: Uint8Array;
}

const READ_BUFFER_BYTES = 2 * (MAX_FRAME_PAYLOAD + FRAME_HEADER_BYTES);

/** One read buffer and the payloads of it still held (FrameReader.hold). */
class ReadBuffer {
  holds = 0;
  #free: (() => void) | null = null;

  constructor(readonly bytes: Uint8Array) {}

  hold(): () => void {
    this.holds++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.holds === 0) this.#free?.();
    };
  }

  /** Resolves once nothing in this buffer is held. */
  async free(): Promise<void> {
    while (this.holds > 0) await new Promise<void>((resolve) => this.#free = resolve);
    this.#free = null;
  }
}

export class FrameReader {
  #current = new ReadBuffer(ioBuffer(READ_BUFFER_BYTES));
  #buf = this.#current.bytes;
  /** The other buffer, made when a payload is first held. */
  #other: ReadBuffer | null = null;
  #start = 0;
  #end = 0;
  /** Bound on control (non-DATA) frame payloads; see parseHeader. */
  maxControl = MAX_FRAME_PAYLOAD;

  constructor(readonly stream: ByteStream, readonly onProgress: () => void = () => {}) {}

  /** Bytes already received and not yet handed out. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /** Hands over the bytes buffered past the last frame (when a secure channel takes over). */
  takeBuffered(): Uint8Array {
    if (this.#current.holds > 0 || (this.#other?.holds ?? 0) > 0) {
      throw new Error("FrameReader.takeBuffered() while a payload is held");
    }
    const out = this.#buf.slice(this.#start, this.#end);
    this.#start = this.#end = 0;
    return out;
  }

  /** Reads exactly `n` raw bytes (used for the preamble); null on a clean end. */
  async readRaw(n: number): Promise<Uint8Array | null> {
    if (!(await this.#fill(n))) return null;
    const out = this.#buf.slice(this.#start, this.#start + n);
    this.#start += n;
    return out;
  }

  /**
   * Keeps the last frame's payload valid past the next `next()`, until the
   * returned function is called (a file write from it, in flight while the
   * next frame arrives). The reader then goes on in its other buffer; once
   * it needs this one again, it waits for the release. So a DATA payload
   * goes from the socket (or the decryption) to the file with no copy. Hold
   * at most one buffer's payloads while calling `next()`: with both held,
   * `next()` waits for a release.
   */
  hold(): () => void {
    return this.#current.hold();
  }

  /**
   * The next frame if it is buffered whole, else null (then `next()` reads it). A stream of small
   * files is mostly read this way: no promise, no await per frame.
   */
  nextBuffered(): Frame | null {
    const buffered = this.#end - this.#start;
    if (buffered < FRAME_HEADER_BYTES) return null;
    const header = parseHeader(this.#buf, this.maxControl, this.#start);
    const total = FRAME_HEADER_BYTES + header.length;
    if (buffered < total) return null;
    const payload = this.#buf.subarray(this.#start + FRAME_HEADER_BYTES, this.#start + total);
    this.#start += total;
    return { type: header.type, payload };
  }

  /** The next frame, or null when the peer closed cleanly between frames. */
  async next(): Promise<Frame | null> {
    // A frame already buffered (most of a stream of small files) takes no wait for #fill.
    if (this.#end - this.#start < FRAME_HEADER_BYTES && !(await this.#fill(FRAME_HEADER_BYTES))) {
      return null;
    }
    const header = parseHeader(this.#buf, this.maxControl, this.#start);
    const total = FRAME_HEADER_BYTES + header.length;
    if (this.#end - this.#start < total && !(await this.#fill(total))) {
      throw new ProtocolError("truncated", "connection closed");
    }
    const payload = this.#buf.subarray(this.#start + FRAME_HEADER_BYTES, this.#start + total);
    this.#start += total;
    return { type: header.type, payload };
  }

  /** Ensures `n` bytes are buffered. False on a clean end with none buffered. */
  async #fill(n: number): Promise<boolean> {
    if (this.#end - this.#start >= n) return true;
    if (this.#current.holds > 0) await this.#switch();
    // Move what is left to the front when it would not fit, and whenever nothing is left (a
    // free move): a stream of small messages then keeps using the first pages of the buffer.
    if (this.#start === this.#end || this.#start + n > this.#buf.length) {
      this.#buf.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    while (this.#end - this.#start < n) {
      const got = await this.stream.read(this.#buf.subarray(this.#end));
      if (got === null) {
        if (this.#end === this.#start) return false;
        throw new ProtocolError("truncated", "connection closed in the middle of a frame");
      }
      this.#end += got;
      this.onProgress();
    }
    return true;
  }

  /** Goes on in the other buffer (once free), taking along what is buffered past the last frame. */
  async #switch(): Promise<void> {
    const next = this.#other ?? new ReadBuffer(ioBuffer(READ_BUFFER_BYTES));
    await next.free();
    next.bytes.set(this.#buf.subarray(this.#start, this.#end));
    this.#end -= this.#start;
    this.#start = 0;
    this.#other = this.#current;
    this.#current = next;
    this.#buf = next.bytes;
  }
}

const WRITE_BUFFER_BYTES = MAX_FRAME_PAYLOAD + FRAME_HEADER_BYTES + 64 * 1024;
/** Below this much free room, `reserve()` flushes first, so writes stay large. */
const MIN_RESERVE = 64 * 1024;

/**
 * Frames go into one of two buffers. When a buffer fills during a data
 * stream (`reserve`), it is handed to the stream and the other one is
 * filled meanwhile, so reading the next chunk of a file overlaps with
 * sending the last; at most one write is in flight. `flush()` waits until
 * everything queued is written.
 */
export class FrameWriter {
  #buf: Uint8Array = ioBuffer(WRITE_BUFFER_BYTES, FRAME_HEADER_BYTES);
  #spare: Uint8Array | null = null;
  #len = 0;
  #reserved = -1;
  #flushing = false;
  /** The write of the other buffer, if one is under way. */
  #inflight: Promise<void> | null = null;

  constructor(readonly stream: ByteStream, readonly onProgress: () => void = () => {}) {}

  /** Queues raw bytes (the preamble). */
  async raw(bytes: Uint8Array): Promise<void> {
    if (this.#len + bytes.length > this.#buf.length) await this.flush();
    this.#buf.set(bytes, this.#len);
    this.#len += bytes.length;
  }

  /** Queues one whole frame. */
  async frame(type: FrameTypeCode, payload: Uint8Array): Promise<void> {
    const total = FRAME_HEADER_BYTES + payload.length;
    if (this.#len + total > this.#buf.length) await this.flush();
    writeHeader(this.#buf, this.#len, type, payload.length);
    this.#buf.set(payload, this.#len + FRAME_HEADER_BYTES);
    this.#len += total;
  }

  /**
   * Room for the payload of one frame, up to `max` bytes, inside the
   * buffer. Fill a prefix of it, then `commit(type, n)`. When the buffer is
   * full it is handed off, and the room is in the other one.
   */
  async reserve(max: number): Promise<Uint8Array> {
    if (this.#buf.length - this.#len - FRAME_HEADER_BYTES < Math.min(max, MIN_RESERVE)) {
      await this.#handOff();
    }
    this.#reserved = this.#len;
    const start = this.#len + FRAME_HEADER_BYTES;
    return this.#buf.subarray(start, Math.min(this.#buf.length, start + max));
  }

  /** Room for exactly `n` payload bytes (at most MAX_FRAME_PAYLOAD), handing off first if needed. */
  async reserveExactly(n: number): Promise<Uint8Array> {
    if (this.#buf.length - this.#len - FRAME_HEADER_BYTES < n) await this.#handOff();
    this.#reserved = this.#len;
    const start = this.#len + FRAME_HEADER_BYTES;
    return this.#buf.subarray(start, start + n);
  }

  /**
   * `reserveExactly(n)` where it need not wait: null (nothing reserved) where
   * the buffer must be handed off first, for `reserveExactly` to do.
   */
  reserveExactlyNow(n: number): Uint8Array | null {
    if (this.#buf.length - this.#len - FRAME_HEADER_BYTES < n) return null;
    this.#reserved = this.#len;
    const start = this.#len + FRAME_HEADER_BYTES;
    return this.#buf.subarray(start, start + n);
  }

  /**
   * `frame(type, payload)` where it need not wait: false (nothing queued)
   * where the buffer must be flushed first, for `frame` to do.
   */
  frameNow(type: FrameTypeCode, payload: Uint8Array): boolean {
    const total = FRAME_HEADER_BYTES + payload.length;
    if (this.#len + total > this.#buf.length) return false;
    writeHeader(this.#buf, this.#len, type, payload.length);
    this.#buf.set(payload, this.#len + FRAME_HEADER_BYTES);
    this.#len += total;
    return true;
  }

  /** Turns the first `n` reserved bytes into a frame of `type`. */
  commit(type: FrameTypeCode, n: number): void {
    if (this.#reserved < 0) throw new Error("commit() without reserve()");
    writeHeader(this.#buf, this.#reserved, type, n);
    this.#len = this.#reserved + FRAME_HEADER_BYTES + n;
    this.#reserved = -1;
  }

  get pending(): number {
    return this.#len;
  }

  /** Whether a write is under way (another task must not write to the stream now). */
  get busy(): boolean {
    return this.#flushing || this.#inflight !== null;
  }

  /** Waits for the write in flight (rethrowing its error), then starts writing this buffer. */
  async #handOff(): Promise<void> {
    await this.#settle();
    if (this.#len === 0) return;
    const full = this.#buf.subarray(0, this.#len);
    const writing = writeAll(this.stream, full).then(() => this.onProgress());
    writing.catch(() => {}); // observed by the next #settle()
    this.#inflight = writing;
    this.#spare ??= ioBuffer(WRITE_BUFFER_BYTES, FRAME_HEADER_BYTES);
    [this.#buf, this.#spare] = [this.#spare, this.#buf];
    this.#len = 0;
  }

  async #settle(): Promise<void> {
    const inflight = this.#inflight;
    if (inflight === null) return;
    try {
      await inflight;
    } finally {
      this.#inflight = null;
    }
  }

  /** Writes everything queued, and returns once it is written. */
  async flush(): Promise<void> {
    this.#flushing = true;
    try {
      await this.#settle();
      if (this.#len === 0) return;
      await writeAll(this.stream, this.#buf.subarray(0, this.#len));
      this.#len = 0;
      this.onProgress();
    } finally {
      this.#flushing = false;
    }
  }
}
