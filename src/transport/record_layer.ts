/**
 * Record layer of ferry's secure channel: AEAD_CHACHA20_POLY1305 (RFC 8439 §2.8),
 * one key and one implicit counter per direction. The AEAD engine is aead.ts's
 * (OpenSSL or node:crypto, the same bytes either way); the caller moves the bytes.
 *
 * Record on the wire:
 *
 *   length u32 big-endian | ciphertext | tag (16 bytes)
 *
 * - `length` counts ciphertext + tag. It is the AEAD associated data, so it is
 *   authenticated; it is checked against MAX_RECORD_BODY by `parseRecordHeader`
 *   before anything is allocated for the body.
 * - The plaintext inside is `type u8 | payload` (the type is encrypted and
 *   authenticated, like TLS 1.3's inner content type, RFC 8446 §5.2): type 0 is
 *   data, type 1 is "close" with an empty payload.
 * - Nonce (96 bits) = the record's sequence number in this direction, big-endian,
 *   starting at 0 (the upper 32 bits stay 0). It is never sent: a replayed,
 *   dropped, reordered or cross-direction record fails authentication. Each
 *   direction has its own key, so a (key, nonce) pair is never used twice.
 * - A stream is complete only after the authenticated close record: if the
 *   transport ends first, `RecordOpener.finish()` throws (truncation).
 * - Any failure is final: the sealer or opener refuses everything after it.
 */
import { type ChaChaPoly, defaultChaChaPoly } from "./aead.ts";

export const RECORD_HEADER_BYTES = 4;
export const RECORD_TAG_BYTES = 16;
/** Largest payload of one data record; callers split larger writes. */
export const MAX_RECORD_PAYLOAD = 1024 * 1024;
/** Largest `length` a header may carry: type byte + payload + tag. */
export const MAX_RECORD_BODY = 1 + MAX_RECORD_PAYLOAD + RECORD_TAG_BYTES;
/** Smallest valid `length`: type byte + tag. */
export const MIN_RECORD_BODY = 1 + RECORD_TAG_BYTES;
/**
 * Records per direction and key. The nonce could count to 2^96 - 1, the brief's bound
 * is 2^64 - 1; we stop at 2^53 - 1 so the counter stays an exact JS number. At 1 MiB a
 * record that is 8 ZiB, so no real session meets it; the last number is kept for close.
 */
export const DEFAULT_MAX_RECORDS = Number.MAX_SAFE_INTEGER;

const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TYPE_DATA = 0;
const TYPE_CLOSE = 1;

export type RecordErrorCode =
  | "oversize" // header announces more than MAX_RECORD_BODY
  | "malformed" // header too small, or record length disagrees with its header
  | "auth" // authentication failed: tampered, replayed, reordered, dropped or wrong key
  | "closed" // record after close, or use after a failure
  | "limit" // record counter exhausted
  | "truncated"; // transport ended before the close record

export class RecordError extends Error {
  constructor(readonly code: RecordErrorCode, message: string) {
    super(message);
    this.name = "RecordError";
  }
}

/** Which way records flow; used in messages and to keep a key paired with its direction. */
export type Direction = "c2s" | "s2c";

export interface RecordOptions {
  /** Lower the record cap (tests). Default DEFAULT_MAX_RECORDS. */
  maxRecords?: number;
  /** The AEAD engine (tests). Default: defaultChaChaPoly(). */
  aead?: ChaChaPoly;
}

/**
 * Reads the 4-byte header and returns the body length (ciphertext + tag) to read next.
 * Throws RecordError "oversize" above MAX_RECORD_BODY and "malformed" below
 * MIN_RECORD_BODY, so a hostile length never reaches an allocation.
 */
export function parseRecordHeader(bytes: Uint8Array): number {
  if (bytes.length < RECORD_HEADER_BYTES) {
    throw new RecordError("malformed", "record header is 4 bytes");
  }
  const length = ((bytes[0] << 24) | (bytes[1] << 16) | (bytes[2] << 8) | bytes[3]) >>> 0;
  if (length > MAX_RECORD_BODY) {
    throw new RecordError(
      "oversize",
      `record of ${length} bytes exceeds the limit of ${MAX_RECORD_BODY}`,
    );
  }
  if (length < MIN_RECORD_BODY) {
    throw new RecordError("malformed", `record of ${length} bytes is shorter than its tag`);
  }
  return length;
}

function checkKey(key: Uint8Array): Uint8Array {
  if (!(key instanceof Uint8Array) || key.length !== KEY_BYTES) {
    throw new TypeError(`a record key is ${KEY_BYTES} bytes`);
  }
  return key.slice();
}

function checkMaxRecords(n: number | undefined): number {
  const max = n ?? DEFAULT_MAX_RECORDS;
  if (!Number.isSafeInteger(max) || max < 1) throw new RangeError("maxRecords must be >= 1");
  return max;
}

/** Writes the 96-bit big-endian nonce for sequence number `seq` (< 2^53) into `out`. */
function writeNonce(out: Uint8Array, seq: number): void {
  const hi = Math.floor(seq / 0x1_0000_0000);
  const lo = seq >>> 0;
  out[0] =
    out[1] =
    out[2] =
    out[3] =
      0;
  out[4] = hi >>> 24;
  out[5] = (hi >>> 16) & 0xff;
  out[6] = (hi >>> 8) & 0xff;
  out[7] = hi & 0xff;
  out[8] = lo >>> 24;
  out[9] = (lo >>> 16) & 0xff;
  out[10] = (lo >>> 8) & 0xff;
  out[11] = lo & 0xff;
}

/** Seals records for one direction. */
export class RecordSealer {
  readonly #key: Uint8Array;
  readonly #nonce = new Uint8Array(NONCE_BYTES);
  readonly #type = new Uint8Array(1);
  readonly #max: number;
  readonly #aead: ChaChaPoly;
  #seq = 0;
  #closed = false;

  constructor(key: Uint8Array, readonly direction: Direction, options: RecordOptions = {}) {
    this.#key = checkKey(key);
    this.#max = checkMaxRecords(options.maxRecords);
    this.#aead = options.aead ?? defaultChaChaPoly();
  }

  /** Records sealed so far (the next sequence number). */
  get sequence(): number {
    return this.#seq;
  }

  /** Whether the close record was sealed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** One data record (header included) carrying `plaintext` (at most MAX_RECORD_PAYLOAD bytes). */
  seal(plaintext: Uint8Array): Uint8Array {
    const out = new Uint8Array(recordLength(plaintext.length));
    this.sealInto(plaintext, out);
    return out;
  }

  /**
   * `seal`, written into the start of `out` (at least `recordLength(plaintext.length)`
   * bytes, not overlapping `plaintext`) rather than a new array. Returns the record's length.
   */
  sealInto(plaintext: Uint8Array, out: Uint8Array): number {
    if (plaintext.length > MAX_RECORD_PAYLOAD) {
      throw new RangeError(`a record carries at most ${MAX_RECORD_PAYLOAD} bytes`);
    }
    // The last sequence number is reserved for the close record.
    if (this.#seq >= this.#max - 1) this.#refuse();
    return this.#seal(TYPE_DATA, plaintext, out);
  }

  /** The close record: tells the peer the stream ended here. Nothing can be sealed after it. */
  sealClose(): Uint8Array {
    if (this.#seq >= this.#max) this.#refuse();
    const record = new Uint8Array(recordLength(0));
    this.#seal(TYPE_CLOSE, new Uint8Array(0), record);
    this.#closed = true;
    return record;
  }

  #refuse(): never {
    throw new RecordError(
      "limit",
      `${this.direction}: record counter exhausted; rekey or reconnect`,
    );
  }

  #seal(type: number, payload: Uint8Array, out: Uint8Array): number {
    if (this.#closed) throw new RecordError("closed", `${this.direction}: stream already closed`);
    const total = recordLength(payload.length);
    if (out.length < total) throw new RangeError(`a record of this payload needs ${total} bytes`);
    const bodyLength = total - RECORD_HEADER_BYTES;
    out[0] = bodyLength >>> 24;
    out[1] = (bodyLength >>> 16) & 0xff;
    out[2] = (bodyLength >>> 8) & 0xff;
    out[3] = bodyLength & 0xff;
    writeNonce(this.#nonce, this.#seq);
    // Consume the sequence number before encrypting: even if encryption throws, it is
    // never used again.
    this.#seq++;
    this.#type[0] = type;
    this.#aead.seal(
      this.#key,
      this.#nonce,
      out.subarray(0, RECORD_HEADER_BYTES),
      [this.#type, payload],
      out.subarray(RECORD_HEADER_BYTES, total),
    );
    return total;
  }
}

/** Bytes of a whole record (header, type, payload, tag) that carries `payloadLength` bytes. */
export function recordLength(payloadLength: number): number {
  return RECORD_HEADER_BYTES + 1 + payloadLength + RECORD_TAG_BYTES;
}

/** Opens records for one direction, in order. */
export class RecordOpener {
  readonly #key: Uint8Array;
  readonly #nonce = new Uint8Array(NONCE_BYTES);
  readonly #max: number;
  readonly #aead: ChaChaPoly;
  #seq = 0;
  #closed = false;
  #failed = false;

  constructor(key: Uint8Array, readonly direction: Direction, options: RecordOptions = {}) {
    this.#key = checkKey(key);
    this.#max = checkMaxRecords(options.maxRecords);
    this.#aead = options.aead ?? defaultChaChaPoly();
  }

  /** Records opened so far (the next expected sequence number). */
  get sequence(): number {
    return this.#seq;
  }

  /** Whether the peer's authenticated close record arrived: the stream is complete. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Opens one full record (header included). Returns its payload, or null for the close
   * record (after which `closed` is true). The record's bytes are consumed: the payload
   * may be decrypted in place, so it is a view into `record`. Throws RecordError on
   * anything else; after a throw the opener refuses every later record.
   */
  open(record: Uint8Array): Uint8Array | null {
    if (this.#failed) {
      throw new RecordError("closed", `${this.direction}: an earlier record failed`);
    }
    if (this.#closed) {
      this.#failed = true;
      throw new RecordError("closed", `${this.direction}: record after the close record`);
    }
    try {
      return this.#open(record);
    } catch (err) {
      this.#failed = true;
      throw err;
    }
  }

  /**
   * Call when the transport reports end of stream. Throws RecordError "truncated" unless
   * the close record was opened: a stream cut by an attacker never looks complete.
   */
  finish(): void {
    if (!this.#closed) {
      this.#failed = true;
      throw new RecordError(
        "truncated",
        `${this.direction}: the stream ended before its close record`,
      );
    }
  }

  #open(record: Uint8Array): Uint8Array | null {
    const bodyLength = parseRecordHeader(record);
    if (record.length !== RECORD_HEADER_BYTES + bodyLength) {
      throw new RecordError(
        "malformed",
        `record is ${record.length} bytes, its header says ${RECORD_HEADER_BYTES + bodyLength}`,
      );
    }
    if (this.#seq >= this.#max) {
      throw new RecordError("limit", `${this.direction}: record counter exhausted`);
    }
    writeNonce(this.#nonce, this.#seq);
    this.#seq++;
    const ctEnd = record.length - RECORD_TAG_BYTES;
    const plain = this.#aead.open(
      this.#key,
      this.#nonce,
      record.subarray(0, RECORD_HEADER_BYTES),
      record.subarray(RECORD_HEADER_BYTES, ctEnd),
      record.subarray(ctEnd),
    );
    if (plain === null) {
      throw new RecordError(
        "auth",
        `${this.direction}: record ${this.#seq - 1} failed authentication ` +
          "(tampered, replayed, reordered, dropped or wrong key)",
      );
    }
    const type = plain[0];
    if (type === TYPE_DATA) {
      return new Uint8Array(plain.buffer, plain.byteOffset + 1, plain.byteLength - 1);
    }
    if (type === TYPE_CLOSE && plain.length === 1) {
      this.#closed = true;
      return null;
    }
    throw new RecordError("malformed", `${this.direction}: unknown record type ${type}`);
  }
}
