/**
 * Frames: `type u8 | length u32 (big-endian) | payload`. The length is
 * checked against the type's bound before any payload is read.
 */
import { ProtocolError } from "./errors.ts";
import { FRAME_HEADER_BYTES, MAX_DIGEST_BYTES, MAX_FRAME_PAYLOAD } from "./limits.ts";

export const FrameType = {
  /** Before the secure channel, binary: a 16-byte nonce (sender); mode u8 + nonce (receiver). */
  CHANNEL_OPEN: 0x03,
  /** Before the secure channel, binary: a CPace share, the receiver's confirmation tag, and AD. */
  KEY_SHARE: 0x04,
  /** Before the secure channel, binary: the sender's 32-byte confirmation tag. */
  KEY_CONFIRM: 0x05,
  /** Sender → receiver, JSON: software and the digests it can compute. */
  HELLO: 0x01,
  /** Receiver → sender, JSON: the chosen digest and the receiver's limits. */
  WELCOME: 0x02,
  /** Sender → receiver, JSON: a batch of entries it will send. */
  ANNOUNCE: 0x10,
  /** Receiver → sender, JSON: one decision per announced entry. */
  PLAN: 0x11,
  /** Sender → receiver, JSON, feature "listing": the top-level names to list (§5.16). */
  LIST: 0x12,
  /** Receiver → sender, binary, feature "listing": flags u8 and 12-byte fingerprints. */
  LISTING: 0x13,
  /** Sender → receiver, JSON, feature "listing": the listed entries it found unchanged. */
  LISTED: 0x14,
  /** Sender → receiver, binary: the next bytes of the current file. */
  DATA: 0x20,
  /** Sender → receiver, binary: end of the current file, its length and digest. */
  FILE_END: 0x21,
  /** Sender → receiver, binary: the current file is abandoned (id, UTF-8 reason). */
  FILE_ABORT: 0x22,
  /** Sender → receiver, binary: answers a resume offer (id, offset: the offer or 0). */
  FILE_START: 0x23,
  /** Receiver → sender, JSON: files that are verified and durable, or failed. */
  ACK: 0x30,
  /** Sender → receiver, empty: nothing more will be announced. */
  DONE: 0x40,
  /** Receiver → sender, JSON: session summary; the receiver then closes. */
  BYE: 0x41,
  /** Either way, empty, to a peer that named "sync": activity while working long, nothing more. */
  NOOP: 0x42,
  /** Either way, JSON: a fatal error; the sender of it closes. */
  ERROR: 0x7f,
} as const;

export type FrameTypeCode = typeof FrameType[keyof typeof FrameType];

/** FILE_END: id u32 | length u64 | digest length u8 | digest. */
export const FILE_END_MAX_BYTES = 4 + 8 + 1 + MAX_DIGEST_BYTES;
/** FILE_ABORT: id u32 | reason (UTF-8, at most this many bytes). */
export const ABORT_REASON_MAX_BYTES = 1024;

const MAX_PAYLOAD: Record<number, number> = {
  [FrameType.CHANNEL_OPEN]: 17,
  [FrameType.KEY_SHARE]: 32 + 32 + 64,
  [FrameType.KEY_CONFIRM]: 32,
  [FrameType.HELLO]: 64 * 1024,
  [FrameType.WELCOME]: 64 * 1024,
  [FrameType.ANNOUNCE]: MAX_FRAME_PAYLOAD,
  [FrameType.PLAN]: MAX_FRAME_PAYLOAD,
  [FrameType.LIST]: MAX_FRAME_PAYLOAD,
  [FrameType.LISTING]: 1 + 65536 * 12,
  [FrameType.LISTED]: 1024,
  [FrameType.DATA]: MAX_FRAME_PAYLOAD,
  [FrameType.FILE_END]: FILE_END_MAX_BYTES,
  [FrameType.FILE_ABORT]: 4 + ABORT_REASON_MAX_BYTES,
  [FrameType.FILE_START]: 12,
  [FrameType.ACK]: MAX_FRAME_PAYLOAD,
  [FrameType.DONE]: 0,
  [FrameType.BYE]: 64 * 1024,
  [FrameType.NOOP]: 0,
  [FrameType.ERROR]: 64 * 1024,
};

export interface FrameHeader {
  type: FrameTypeCode;
  length: number;
}

/** Writes a header for `type` and `length` at `offset` of `target`. */
export function writeHeader(
  target: Uint8Array,
  offset: number,
  type: FrameTypeCode,
  length: number,
): void {
  // Byte by byte (big-endian): no DataView to allocate for every frame.
  target[offset] = type;
  target[offset + 1] = length >>> 24;
  target[offset + 2] = (length >>> 16) & 0xff;
  target[offset + 3] = (length >>> 8) & 0xff;
  target[offset + 4] = length & 0xff;
}

/**
 * Parses and bounds-checks a frame header (the 5 bytes of `bytes` from
 * `at`). `maxControl` can lower the bound of JSON control frames further.
 */
export function parseHeader(
  bytes: Uint8Array,
  maxControl = MAX_FRAME_PAYLOAD,
  at = 0,
): FrameHeader {
  if (bytes.length - at < FRAME_HEADER_BYTES) {
    throw new ProtocolError("bad-frame", "truncated frame header");
  }
  const type = bytes[at]!; // the header's length was checked above
  const typeMax = MAX_PAYLOAD[type];
  if (typeMax === undefined) {
    throw new ProtocolError("bad-frame", `unknown frame type 0x${type.toString(16)}`);
  }
  const max = type === FrameType.DATA ? typeMax : Math.min(typeMax, maxControl);
  const length = bytesU32(bytes, at + 1);
  if (length > max) {
    throw new ProtocolError(
      "frame-too-large",
      `frame type 0x${type.toString(16)} of ${length} bytes exceeds its limit of ${max}`,
    );
  }
  return { type: type as FrameTypeCode, length };
}

/** The whole frame (header and payload) as one buffer. */
export function encodeFrame(type: FrameTypeCode, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
  writeHeader(out, 0, type, payload.length);
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
}

function writeU64(view: DataView, at: number, value: number): void {
  view.setUint32(at, Math.floor(value / 2 ** 32));
  view.setUint32(at + 4, value >>> 0);
}

/** The big-endian u64 at `at` of `bytes`, refused beyond 2^53 (`what` names it). */
function readU64(bytes: Uint8Array, at: number, what: string): number {
  const high = bytesU32(bytes, at);
  if (high >= 2 ** 21) throw new ProtocolError("bad-frame", `${what} beyond 2^53`);
  return high * 2 ** 32 + bytesU32(bytes, at + 4);
}

/**
 * The big-endian u32 at `at` of `bytes` (which the caller checked is long enough), read byte by
 * byte: no DataView to make for every frame or file.
 */
function bytesU32(bytes: Uint8Array, at: number): number {
  return bytes[at]! * 2 ** 24 + ((bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!);
}

export interface FileStart {
  id: number;
  offset: number;
}

export function encodeFileStart(start: FileStart): Uint8Array {
  const out = new Uint8Array(12);
  const view = new DataView(out.buffer);
  view.setUint32(0, start.id);
  writeU64(view, 4, start.offset);
  return out;
}

export function decodeFileStart(payload: Uint8Array): FileStart {
  if (payload.length !== 12) throw new ProtocolError("bad-frame", "FILE_START must be 12 bytes");
  return { id: bytesU32(payload, 0), offset: readU64(payload, 4, "FILE_START offset") };
}

export interface FileEnd {
  id: number;
  length: number;
  digest: Uint8Array;
}

export function encodeFileEnd(end: FileEnd): Uint8Array {
  const out = new Uint8Array(4 + 8 + 1 + end.digest.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, end.id);
  writeU64(view, 4, end.length);
  out[12] = end.digest.length;
  out.set(end.digest, 13);
  return out;
}

export function decodeFileEnd(payload: Uint8Array): FileEnd {
  if (payload.length < 13) throw new ProtocolError("bad-frame", "truncated FILE_END");
  const id = bytesU32(payload, 0);
  const length = readU64(payload, 4, "FILE_END length");
  const digestLength = payload[12]!; // at least 13 bytes, checked above
  if (digestLength > MAX_DIGEST_BYTES || payload.length !== 13 + digestLength) {
    throw new ProtocolError("bad-frame", "FILE_END digest length does not match the frame");
  }
  return { id, length, digest: payload.slice(13) };
}

export interface FileAbort {
  id: number;
  reason: string;
}

export function encodeFileAbort(abort: FileAbort): Uint8Array {
  let reason = new TextEncoder().encode(abort.reason);
  if (reason.length > ABORT_REASON_MAX_BYTES) {
    reason = new TextEncoder().encode(abort.reason.slice(0, ABORT_REASON_MAX_BYTES / 4));
  }
  const out = new Uint8Array(4 + reason.length);
  new DataView(out.buffer).setUint32(0, abort.id);
  out.set(reason, 4);
  return out;
}

export function decodeFileAbort(payload: Uint8Array): FileAbort {
  if (payload.length < 4) throw new ProtocolError("bad-frame", "truncated FILE_ABORT");
  const id = bytesU32(payload, 0);
  const reason = new TextDecoder().decode(payload.subarray(4));
  return { id, reason };
}
