/**
 * The secure channel below the framing: a ByteStream whose bytes travel in
 * authenticated, encrypted records (record_layer.ts). Frames above it are
 * the same as on plain TCP; a record may hold part of a frame or several.
 */
import {
  MAX_RECORD_BODY,
  MAX_RECORD_PAYLOAD,
  parseRecordHeader,
  payloadLength,
  RECORD_HEADER_BYTES,
  RecordError,
  recordLength,
  type RecordOpener,
  type RecordSealer,
} from "./record_layer.ts";
import { type ByteStream, writeAll } from "./byte_stream.ts";
import { ioBuffer } from "./io_buffer.ts";
import { ProtocolError } from "../protocol/errors.ts";

/**
 * How far past the record it needs a read may go. Whatever a read takes of
 * the next record is moved to the front of the buffer later, when that record
 * does not fit behind it; unbounded reads moved about three quarters of a
 * large transfer's bytes that way. This bounds the move to 64 KiB a record,
 * and still lets one read take many small records.
 */
export const READ_AHEAD = 64 * 1024;
/**
 * The input buffer: the largest record and what a read may take past it.
 * A record that does not fit behind the one before is read after moving
 * that read-ahead (at most READ_AHEAD) to the front. Twice the largest
 * record, as before, moved half as often (64 KiB every other large record
 * instead of every one, a few milliseconds a gibibyte) and kept a mebibyte
 * more resident.
 */
const BUFFER_BYTES = RECORD_HEADER_BYTES + MAX_RECORD_BODY + READ_AHEAD;
/** Room for one full record and one of up to 128 KiB (the frame writer's buffer is 1 MiB + 64 KiB + 5). */
const OUT_BUFFER_BYTES = recordLength(MAX_RECORD_PAYLOAD) + recordLength(128 * 1024);

export class SecureStream implements ByteStream {
  #in: Uint8Array;
  #start = 0;
  #end = 0;
  /** Decrypted bytes not yet handed out. */
  #plain: Uint8Array = new Uint8Array(0);
  #ended = false;
  /** Where outgoing records are sealed and written from: a full record and a smaller one. */
  #out = ioBuffer(OUT_BUFFER_BYTES);
  /** The write under way: writes take turns, since they share `#out`. */
  #writing: Promise<unknown> = Promise.resolve();

  /** `leftover`: bytes already read from `conn` past the handshake (the first records). */
  constructor(
    readonly conn: ByteStream,
    readonly sealer: RecordSealer,
    readonly opener: RecordOpener,
    leftover: Uint8Array,
  ) {
    // The leftover is at most a frame reader's buffer, which fits today; never fail on it.
    this.#in = ioBuffer(Math.max(BUFFER_BYTES, leftover.length));
    this.#in.set(leftover);
    this.#end = leftover.length;
  }

  /**
   * Reads decrypted bytes. A cut stream is reported as a truncated
   * connection; a record that fails to authenticate (altered, replayed,
   * reordered, dropped) as "bad-record": either ends the session.
   */
  async read(p: Uint8Array): Promise<number | null> {
    try {
      return await this.#read(p);
    } catch (err) {
      if (!(err instanceof RecordError)) throw err;
      throw err.code === "truncated"
        ? new ProtocolError("truncated", "the connection was cut")
        : new ProtocolError("bad-record", `a record failed to authenticate: ${err.message}`);
    }
  }

  async #read(p: Uint8Array): Promise<number | null> {
    while (this.#plain.length === 0) {
      if (this.#ended) return null;
      const record = await this.#nextRecord();
      if (record === null) {
        this.opener.finish(); // throws "truncated": the stream was cut before its close record
      } else if (p.length >= payloadLength(record)) {
        // Decrypt straight into the caller's buffer: no copy. The bytes count only once
        // openInto returns, after the tag verified; on a failure it wipes them and throws.
        const n = this.opener.openInto(record, p);
        if (n === null) this.#ended = true;
        else if (n > 0) return n;
        continue;
      } else {
        const payload = this.opener.open(record);
        if (payload !== null) {
          this.#plain = payload;
          continue;
        }
      }
      this.#ended = true;
      return null;
    }
    const n = Math.min(p.length, this.#plain.length);
    p.set(this.#plain.subarray(0, n));
    this.#plain = this.#plain.subarray(n);
    return n;
  }

  /** The next whole record, header included (a view into the input buffer); null at the end of the stream. */
  async #nextRecord(): Promise<Uint8Array | null> {
    if (!(await this.#fill(RECORD_HEADER_BYTES))) return null;
    const body = parseRecordHeader(
      this.#in.subarray(this.#start, this.#start + RECORD_HEADER_BYTES),
    );
    const total = RECORD_HEADER_BYTES + body;
    if (!(await this.#fill(total))) {
      throw new RecordError("truncated", "the stream ended inside a record");
    }
    const record = this.#in.subarray(this.#start, this.#start + total);
    this.#start += total;
    return record;
  }

  async #fill(n: number): Promise<boolean> {
    if (this.#end - this.#start >= n) return true;
    // Move what is left to the front when it would not fit, and whenever nothing is left (a
    // free move): a stream of small messages then keeps using the first pages of the buffer.
    if (this.#start === this.#end || this.#start + n > this.#in.length) {
      this.#in.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    const limit = Math.min(this.#in.length, this.#start + n + READ_AHEAD);
    while (this.#end - this.#start < n) {
      const got = await this.conn.read(this.#in.subarray(this.#end, limit));
      if (got === null) {
        if (this.#end === this.#start) return false;
        throw new RecordError("truncated", "the stream ended inside a record");
      }
      this.#end += got;
    }
    return true;
  }

  write(p: Uint8Array): Promise<number> {
    const turn = this.#writing.catch(() => {}).then(() => this.#write(p));
    this.#writing = turn;
    return turn;
  }

  /**
   * Seals `p` into records of at most MAX_RECORD_PAYLOAD bytes, as many as fit
   * in `#out` at a time, and writes them together: a frame buffer of 1 MiB and
   * a few bytes is one write, not two.
   */
  async #write(p: Uint8Array): Promise<number> {
    let at = 0;
    while (at < p.length) {
      let used = 0;
      while (at < p.length) {
        const n = Math.min(MAX_RECORD_PAYLOAD, p.length - at);
        if (used + recordLength(n) > this.#out.length) break;
        used += this.sealer.sealInto(p.subarray(at, at + n), this.#out.subarray(used));
        at += n;
      }
      if (used === 0) throw new Error("SecureStream: #out cannot hold a full record");
      await writeAll(this.conn, this.#out.subarray(0, used));
    }
    return p.length;
  }

  /** Ends our direction with the authenticated close record, then half-closes. */
  async closeWrite(): Promise<void> {
    await this.#writing.catch(() => {});
    if (!this.sealer.closed) await writeAll(this.conn, this.sealer.sealClose());
    await this.conn.closeWrite?.();
  }

  close(): void {
    this.conn.close();
  }
}
