/**
 * Record layer of ferry's secure channel: one AEAD suite per session
 * (aead.ts: AES-256-GCM or ChaCha20-Poly1305, chosen in the handshake), one
 * traffic secret and one implicit counter per direction. The caller moves the bytes.
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
 *   dropped, reordered or cross-direction record fails authentication.
 * - Keys change every EPOCH_RECORDS records: record `seq` is sealed with
 *   `recordKey(secret, suite, floor(seq / EPOCH_RECORDS))` (key_schedule.ts), so
 *   one key protects at most 2^16 records of at most 1 MiB (64 GiB, 2^32 AES
 *   blocks), far inside AES-GCM's usage limits; each direction has its own
 *   secret and the suite is bound into every key, so a (key, nonce) pair is never
 *   used twice.
 * - A stream is complete only after the authenticated close record: if the
 *   transport ends first, `RecordOpener.finish()` throws (truncation).
 * - Any failure is final: the sealer or opener refuses everything after it.
 */
import { type Aead, BASELINE_SUITE, defaultAead } from "./aead.ts";
import { recordKey } from "./key_schedule.ts";

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
/** Records sealed under one key before the next key of the direction takes over. */
export const EPOCH_RECORDS = 65_536;

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
  /** The AEAD engine, whose suite the keys are derived for. Default: defaultAead(BASELINE_SUITE). */
  aead?: Aead;
  /** Lower the records per key (tests). Default EPOCH_RECORDS. */
  epochRecords?: number;
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
  const length = new DataView(bytes.buffer, bytes.byteOffset, RECORD_HEADER_BYTES).getUint32(0);
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

function checkSecret(secret: Uint8Array): Uint8Array {
  if (!(secret instanceof Uint8Array) || secret.length !== KEY_BYTES) {
    throw new TypeError(`a traffic secret is ${KEY_BYTES} bytes`);
  }
  return secret.slice();
}

function checkCount(n: number | undefined, fallback: number, name: string): number {
  const value = n ?? fallback;
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be >= 1`);
  return value;
}

/**
 * The secret, suite and current key of one direction: the key for record `seq`
 * is derived when `seq` enters a new epoch.
 */
class DirectionKeys {
  readonly #secret: Uint8Array;
  readonly #epochRecords: number;
  #epoch = -1;
  #key: Uint8Array = new Uint8Array(KEY_BYTES);

  constructor(secret: Uint8Array, readonly aead: Aead, options: RecordOptions) {
    this.#secret = checkSecret(secret);
    this.#epochRecords = checkCount(options.epochRecords, EPOCH_RECORDS, "epochRecords");
  }

  keyFor(seq: number): Uint8Array {
    const epoch = Math.floor(seq / this.#epochRecords);
    if (epoch !== this.#epoch) {
      this.#key.fill(0);
      this.#key = recordKey(this.#secret, this.aead.suite, epoch);
      this.#epoch = epoch;
    }
    return this.#key;
  }
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
  readonly #keys: DirectionKeys;
  readonly #nonce = new Uint8Array(NONCE_BYTES);
  readonly #type = new Uint8Array(1);
  readonly #max: number;
  #seq = 0;
  #closed = false;

  /** `secret`: this direction's 32-byte traffic secret (key_schedule.ts). */
  constructor(secret: Uint8Array, readonly direction: Direction, options: RecordOptions = {}) {
    this.#keys = new DirectionKeys(secret, options.aead ?? defaultAead(BASELINE_SUITE), options);
    this.#max = checkCount(options.maxRecords, DEFAULT_MAX_RECORDS, "maxRecords");
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
    const key = this.#keys.keyFor(this.#seq);
    // Consume the sequence number before encrypting: even if encryption throws, it is
    // never used again.
    this.#seq++;
    this.#type[0] = type;
    this.#keys.aead.seal(
      key,
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
  readonly #keys: DirectionKeys;
  readonly #nonce = new Uint8Array(NONCE_BYTES);
  readonly #type = new Uint8Array(1);
  readonly #max: number;
  #seq = 0;
  #closed = false;
  #failed = false;

  /** `secret`: this direction's 32-byte traffic secret (key_schedule.ts). */
  constructor(secret: Uint8Array, readonly direction: Direction, options: RecordOptions = {}) {
    this.#keys = new DirectionKeys(secret, options.aead ?? defaultAead(BASELINE_SUITE), options);
    this.#max = checkCount(options.maxRecords, DEFAULT_MAX_RECORDS, "maxRecords");
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
    return this.#guard(() => this.#open(record));
  }

  /**
   * `open`, writing the payload into the start of `out` (at least
   * `payloadLength(record)` bytes) instead of handing out a view of the record.
   * Returns the payload's length, or null for the close record. Until it
   * returns, `out` may hold unverified bytes; after a throw, discard them.
   */
  openInto(record: Uint8Array, out: Uint8Array): number | null {
    // A caller's mistake, not the peer's: checked before the record counts.
    const length = record.length - RECORD_HEADER_BYTES - 1 - RECORD_TAG_BYTES;
    if (out.length < length) throw new RangeError(`a record of this size needs ${length} bytes`);
    return this.#guard(() => this.#openInto(record, out.subarray(0, length)));
  }

  #guard<T>(fn: () => T): T {
    if (this.#failed) {
      throw new RecordError("closed", `${this.direction}: an earlier record failed`);
    }
    if (this.#closed) {
      this.#failed = true;
      throw new RecordError("closed", `${this.direction}: record after the close record`);
    }
    try {
      return fn();
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

  /** Checks the record's length and takes its sequence number; returns its key. */
  #next(record: Uint8Array): Uint8Array {
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
    const key = this.#keys.keyFor(this.#seq);
    this.#seq++;
    return key;
  }

  #authFailed(): never {
    throw new RecordError(
      "auth",
      `${this.direction}: record ${this.#seq - 1} failed authentication ` +
        "(tampered, replayed, reordered, dropped or wrong key)",
    );
  }

  /** What an authenticated record of `type` carrying `length` payload bytes means. */
  #typed(type: number, length: number): "data" | null {
    if (type === TYPE_DATA) return "data";
    if (type === TYPE_CLOSE && length === 0) {
      this.#closed = true;
      return null;
    }
    throw new RecordError("malformed", `${this.direction}: unknown record type ${type}`);
  }

  #open(record: Uint8Array): Uint8Array | null {
    const key = this.#next(record);
    const ctEnd = record.length - RECORD_TAG_BYTES;
    const plain = this.#keys.aead.open(
      key,
      this.#nonce,
      record.subarray(0, RECORD_HEADER_BYTES),
      record.subarray(RECORD_HEADER_BYTES, ctEnd),
      record.subarray(ctEnd),
    );
    if (plain === null) this.#authFailed();
    // A record body is at least the type byte and the tag (parseRecordHeader), so plain[0] is there.
    return this.#typed(plain[0]!, plain.length - 1) === null
      ? null
      : new Uint8Array(plain.buffer, plain.byteOffset + 1, plain.byteLength - 1);
  }

  /** `payload` is exactly the room for the record's payload. */
  #openInto(record: Uint8Array, payload: Uint8Array): number | null {
    const ctEnd = record.length - RECORD_TAG_BYTES;
    const key = this.#next(record);
    const ok = this.#keys.aead.openInto(
      key,
      this.#nonce,
      record.subarray(0, RECORD_HEADER_BYTES),
      record.subarray(RECORD_HEADER_BYTES, ctEnd),
      record.subarray(ctEnd),
      [this.#type, payload],
    );
    if (!ok) this.#authFailed();
    return this.#typed(this.#type[0]!, payload.length) === null ? null : payload.length;
  }
}

/** The payload length of a whole record (header included), once its header is checked. */
export function payloadLength(record: Uint8Array): number {
  return parseRecordHeader(record) - 1 - RECORD_TAG_BYTES;
}
