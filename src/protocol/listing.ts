/**
 * Listings (PROTOCOL.md §5.16, feature "listing"): before a sync announces
 * anything, the receiver tells the sender which entries it already holds
 * under the sender's top-level names, as salted fingerprints, and the
 * sender announces only the others. Pure: the messages, the fingerprint's
 * input, and the set the sender looks fingerprints up in.
 */
import { ProtocolError } from "./errors.ts";
import { decodeJson } from "./messages.ts";

/** Bytes of the salt LIST carries. */
export const LIST_SALT_BYTES = 16;
/** At most this many top-level names in a LIST. */
export const LIST_MAX_ROOTS = 4096;
/**
 * Bytes of one fingerprint in LISTING: 96 bits, so that a changed file's matching some other
 * listed entry by chance (about sent × listed / 2^96) never happens in practice.
 */
export const FINGERPRINT_BYTES = 12;
/** At most this many fingerprints in all a receiver sends for one LIST (then `incomplete`). */
export const LISTING_MAX_FINGERPRINTS = 1 << 20;
/** At most this many fingerprints in one LISTING frame (768 KiB). */
export const LISTING_FRAME_FINGERPRINTS = 65536;

/** LISTING's flags: the last frame of the listing. */
export const LISTING_LAST = 0x01;
/** LISTING's flags: the receiver stopped at its bound; the listing is not whole. */
export const LISTING_INCOMPLETE = 0x02;

export interface List {
  /** 16 random bytes (hex on the wire): each session's fingerprints differ. */
  salt: Uint8Array;
  /** The sender's top-level names (its sources' names on the receiver). */
  roots: string[];
}

export function decodeList(payload: Uint8Array): List {
  const m = decodeJson(payload, "LIST");
  const { salt, roots } = m;
  if (typeof salt !== "string" || !/^[0-9a-f]{32}$/.test(salt)) {
    throw new ProtocolError("bad-message", "LIST.salt must be 32 lowercase hex digits");
  }
  if (
    !Array.isArray(roots) || roots.length === 0 || roots.length > LIST_MAX_ROOTS ||
    !roots.every((r) => typeof r === "string")
  ) {
    throw new ProtocolError("bad-message", `LIST.roots must be 1 to ${LIST_MAX_ROOTS} names`);
  }
  const bytes = new Uint8Array(LIST_SALT_BYTES);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(salt.slice(2 * i, 2 * i + 2), 16);
  return { salt: bytes, roots: roots as string[] };
}

/** One LISTING frame: its flags and its fingerprints (12 bytes each, back to back). */
export interface ListingFrame {
  flags: number;
  fingerprints: Uint8Array;
}

export function encodeListing(flags: number, fingerprints: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + fingerprints.length);
  out[0] = flags;
  out.set(fingerprints, 1);
  return out;
}

export function decodeListing(payload: Uint8Array): ListingFrame {
  const count = (payload.length - 1) / FINGERPRINT_BYTES;
  if (payload.length < 1 || !Number.isInteger(count) || count > LISTING_FRAME_FINGERPRINTS) {
    throw new ProtocolError("bad-frame", `LISTING of ${payload.length} bytes`);
  }
  const flags = payload[0]!;
  if ((flags & ~(LISTING_LAST | LISTING_INCOMPLETE)) !== 0) {
    throw new ProtocolError("bad-frame", `LISTING flags 0x${flags.toString(16)}`);
  }
  if ((flags & LISTING_INCOMPLETE) !== 0 && (flags & LISTING_LAST) === 0) {
    throw new ProtocolError("bad-frame", "LISTING incomplete but not last");
  }
  if (count === 0 && (flags & LISTING_LAST) === 0) {
    throw new ProtocolError("bad-frame", "LISTING empty but not last");
  }
  return { flags, fingerprints: payload.subarray(1) };
}

/** What a fingerprint is of: an entry as announced (path relative, mtime in whole ms). */
export type Fingerprinted =
  | { kind: "file"; path: string; size: number; mtime: number }
  | { kind: "dir"; path: string; mtime: number; mode: number };

const encoder = new TextEncoder();

/**
 * The bytes a fingerprint hashes: the salt, then the UTF-8 of
 * `file NUL path NUL size NUL mtime` or `dir NUL path NUL mtime NUL mode`,
 * the numbers in decimal (mtime truncated to a whole millisecond, mode the
 * permission bits).
 */
export function fingerprintInput(salt: Uint8Array, entry: Fingerprinted): Uint8Array {
  const mtime = Math.trunc(entry.mtime);
  const line = entry.kind === "file"
    ? `file\0${entry.path}\0${entry.size}\0${mtime}`
    : `dir\0${entry.path}\0${mtime}\0${entry.mode & 0o7777}`;
  const text = encoder.encode(line);
  const out = new Uint8Array(salt.length + text.length);
  out.set(salt, 0);
  out.set(text, salt.length);
  return out;
}

/** A fingerprint: the first 12 bytes of SHA-256 of `fingerprintInput`. */
export function fingerprint(
  sha256: (data: Uint8Array) => Uint8Array,
  salt: Uint8Array,
  entry: Fingerprinted,
): Uint8Array {
  return sha256(fingerprintInput(salt, entry)).subarray(0, FINGERPRINT_BYTES);
}

/** Longest input `Fingerprinter` writes in place (salt, kind, path, three numbers). */
const INPUT_BYTES = LIST_SALT_BYTES + 8 + 4096 + 3 * 24;

/**
 * SHA-256 of `data[0, length)` written into `out` (32 bytes): for the many
 * short inputs of a listing, with no array made per call.
 */
export type Sha256Into = (data: Uint8Array, length: number, out: Uint8Array) => void;

/** A `Sha256Into` made of a one-shot SHA-256 (one array per call). */
export function sha256IntoOf(sha256: (data: Uint8Array) => Uint8Array): Sha256Into {
  return (data, length, out) => out.set(sha256(data.subarray(0, length)));
}

const FILE_TAG = [0x66, 0x69, 0x6c, 0x65, 0]; // "file\0"
const DIR_TAG = [0x64, 0x69, 0x72, 0]; // "dir\0"

/**
 * `fingerprint` for one salt, made in a reused buffer where the path is
 * ASCII (most are) and written where the caller keeps it: no string, no
 * encoder call and no array per entry. Each side of a sync makes one per
 * entry, thousands in a row, so this is on a sync's critical path.
 */
export class Fingerprinter {
  readonly #buf = new Uint8Array(INPUT_BYTES);
  readonly #digest = new Uint8Array(32);
  #salt: Uint8Array;
  readonly #into: Sha256Into;

  constructor(
    readonly sha256: (data: Uint8Array) => Uint8Array,
    salt: Uint8Array,
    into?: Sha256Into,
  ) {
    this.#salt = salt;
    this.#buf.set(salt, 0);
    this.#into = into ?? sha256IntoOf(sha256);
  }

  /** Fingerprints with `salt` from now on (an instance kept for another session). */
  resalt(salt: Uint8Array): void {
    this.#salt = salt;
    this.#buf.set(salt, 0);
  }

  /** The fingerprint of `entry`, in an array of its own. */
  of(entry: Fingerprinted): Uint8Array {
    const out = new Uint8Array(FINGERPRINT_BYTES);
    if (entry.kind === "file") this.file(entry.path, entry.size, entry.mtime, out, 0);
    else this.dir(entry.path, entry.mtime, entry.mode, out, 0);
    return out;
  }

  /** The fingerprint of a file, written to `dest[at, at + 12)`. */
  file(path: string, size: number, mtime: number, dest: Uint8Array, at: number): void {
    let end = this.#tag(FILE_TAG);
    end = this.#put(path, end);
    end = this.#nul(end);
    end = this.#int(size, end);
    end = this.#nul(end);
    end = this.#int(Math.trunc(mtime), end);
    if (end < 0) {
      dest.set(fingerprint(this.sha256, this.#salt, { kind: "file", path, size, mtime }), at);
    } else this.#hash(end, dest, at);
  }

  /** The fingerprint of a folder, written to `dest[at, at + 12)`. */
  dir(path: string, mtime: number, mode: number, dest: Uint8Array, at: number): void {
    let end = this.#tag(DIR_TAG);
    end = this.#put(path, end);
    end = this.#nul(end);
    end = this.#int(Math.trunc(mtime), end);
    end = this.#nul(end);
    end = this.#int(mode & 0o7777, end);
    if (end < 0) {
      dest.set(fingerprint(this.sha256, this.#salt, { kind: "dir", path, mtime, mode }), at);
    } else this.#hash(end, dest, at);
  }

  #hash(length: number, dest: Uint8Array, at: number): void {
    const digest = this.#digest;
    this.#into(this.#buf, length, digest);
    for (let i = 0; i < FINGERPRINT_BYTES; i++) dest[at + i] = digest[i]!;
  }

  /** The kind's tag after the salt: where it ends. */
  #tag(tag: readonly number[]): number {
    const buf = this.#buf;
    let at = this.#salt.length;
    for (let i = 0; i < tag.length; i++) buf[at++] = tag[i]!;
    return at;
  }

  #nul(at: number): number {
    if (at < 0 || at >= this.#buf.length) return -1;
    this.#buf[at] = 0;
    return at + 1;
  }

  /** `text` (ASCII) into the buffer at `at`: where it ends, or -1 (and -1 stays -1). */
  #put(text: string, at: number): number {
    const buf = this.#buf;
    if (at < 0 || at + text.length > buf.length) return -1;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c >= 0x80) return -1;
      buf[at++] = c;
    }
    return at;
  }

  /** Integer `n` in decimal, as `String(n)` writes it, into the buffer at `at`. */
  #int(n: number, at: number): number {
    // String() is exact up to 2^53 and switches to exponents at 10^21: it, beyond the first.
    if (!Number.isSafeInteger(n)) return this.#put(String(n), at);
    const buf = this.#buf;
    if (at < 0) return -1;
    if (n < 0) {
      if (at >= buf.length) return -1;
      buf[at++] = 0x2d; // "-"
      n = -n;
    }
    let digits = 1;
    for (let rest = n; rest >= 10; rest = Math.floor(rest / 10)) digits++;
    if (at + digits > buf.length) return -1;
    for (let i = at + digits - 1; i >= at; i--) {
      buf[i] = 0x30 + (n % 10);
      n = Math.floor(n / 10);
    }
    return at + digits;
  }
}

/**
 * The fingerprints a receiver listed, to look entries up in: an open-addressing
 * hash set of 96-bit values in typed arrays (no object per fingerprint), at
 * most LISTING_MAX_FINGERPRINTS of them. The receiver chooses every value, so
 * a value's slot is a hash keyed with this set's own random numbers: values it
 * picked to pile up in one run of slots do not, so adding and looking up stay
 * fast whatever it sends.
 */
export class FingerprintSet {
  #a = new Uint32Array(16384);
  #b = new Uint32Array(16384);
  #c = new Uint32Array(16384);
  #used = new Uint8Array(16384);
  #size = 0;
  readonly #keys = crypto.getRandomValues(new Uint32Array(3));

  get size(): number {
    return this.#size;
  }

  /** Adds the fingerprints in `bytes` (12 each); false once there would be more than the bound. */
  addAll(bytes: Uint8Array): boolean {
    const count = Math.floor(bytes.length / FINGERPRINT_BYTES);
    const room = LISTING_MAX_FINGERPRINTS - this.#size;
    // Grown once for the whole frame (at most half full), not step by step.
    this.#reserve(this.#size + Math.min(count, room));
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let at = 0; at + FINGERPRINT_BYTES <= bytes.length; at += FINGERPRINT_BYTES) {
      if (this.#size >= LISTING_MAX_FINGERPRINTS) return false;
      this.#add(view.getUint32(at), view.getUint32(at + 4), view.getUint32(at + 8));
    }
    return true;
  }

  /** Whether the fingerprint at `fp[at, at + 12)` is in the set. */
  has(fp: Uint8Array, at = 0): boolean {
    const a = read32(fp, at), b = read32(fp, at + 4), c = read32(fp, at + 8);
    const used = this.#used, as = this.#a, bs = this.#b, cs = this.#c;
    const mask = used.length - 1;
    for (let i = this.#slot(a, b, c) & mask;; i = (i + 1) & mask) {
      if (used[i] === 0) return false;
      if (as[i] === a && bs[i] === b && cs[i] === c) return true;
    }
  }

  /** A keyed mix of the three words (multiplications and shifts, as in MurmurHash3's finalizer). */
  #slot(a: number, b: number, c: number): number {
    const keys = this.#keys;
    let h = Math.imul(a ^ keys[0]!, 0xcc9e2d51);
    h = Math.imul((h ^ (h >>> 15)) ^ b ^ keys[1]!, 0x1b873593);
    h = Math.imul((h ^ (h >>> 13)) ^ c ^ keys[2]!, 0x85ebca6b);
    return (h ^ (h >>> 16)) >>> 0;
  }

  #add(a: number, b: number, c: number): void {
    if ((this.#size + 1) * 2 > this.#used.length) this.#reserve(this.#size + 1);
    const used = this.#used, as = this.#a, bs = this.#b, cs = this.#c;
    const mask = used.length - 1;
    for (let i = this.#slot(a, b, c) & mask;; i = (i + 1) & mask) {
      if (used[i] === 0) {
        used[i] = 1;
        as[i] = a;
        bs[i] = b;
        cs[i] = c;
        this.#size++;
        return;
      }
      if (as[i] === a && bs[i] === b && cs[i] === c) return;
    }
  }

  /** Room for `size` values with the table at most half full. */
  #reserve(size: number): void {
    let length = this.#used.length;
    while (size * 2 > length) length *= 2;
    if (length === this.#used.length) return;
    const a = this.#a, b = this.#b, c = this.#c, used = this.#used;
    this.#a = new Uint32Array(length);
    this.#b = new Uint32Array(length);
    this.#c = new Uint32Array(length);
    this.#used = new Uint8Array(length);
    this.#size = 0;
    for (let i = 0; i < used.length; i++) if (used[i] === 1) this.#add(a[i]!, b[i]!, c[i]!);
  }
}

function read32(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>>
    0;
}

/** LISTED: what the sender left unannounced because the receiver listed it (informative). */
export interface Listed {
  /** Files (and their bytes) the sender found the receiver's own copies of. */
  files: number;
  bytes: number;
}

export function decodeListed(payload: Uint8Array): Listed {
  const m = decodeJson(payload, "LISTED");
  const { files, bytes } = m;
  if (!Number.isSafeInteger(files) || (files as number) < 0) {
    throw new ProtocolError("bad-message", "LISTED.files must be an integer 0 .. 2^53-1");
  }
  if (!Number.isSafeInteger(bytes) || (bytes as number) < 0) {
    throw new ProtocolError("bad-message", "LISTED.bytes must be an integer 0 .. 2^53-1");
  }
  return { files: files as number, bytes: bytes as number };
}
