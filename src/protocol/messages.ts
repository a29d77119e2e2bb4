/**
 * The JSON control messages, their shapes and their validation. Everything
 * here is pure: bytes in, checked values out, or a ProtocolError.
 *
 * A malformed message is fatal to the session. A well-formed ANNOUNCE entry
 * whose fields are out of range is not: the receiver refuses that entry alone
 * (see `checkEntry`).
 */
import { ProtocolError } from "./errors.ts";
import {
  MAX_BATCH_ENTRIES,
  MAX_ENTRY_ID,
  MAX_FILE_SIZE,
  MAX_FRAME_PAYLOAD,
  MAX_HOST_UNITS,
  MAX_PATH_BYTES,
  MAX_TEXT_BYTES,
} from "./limits.ts";

/** "text": a short message for the person at the receiver, never stored (feature "text"). */
export type EntryKind = "file" | "dir" | "text";

/** One announced entry, as sent. */
export interface Entry {
  /** Session-unique id, u32, increasing in announce order. */
  id: number;
  /** Relative `/`-separated name. The receiver validates it. */
  path: string;
  kind: EntryKind;
  /** File size in bytes, or null when unknown in advance (standard input). */
  size: number | null;
  /**
   * Modification time, whole milliseconds since the Unix epoch. The wire allows a
   * fraction; `checkEntry` truncates it toward zero (PROTOCOL.md §5.4).
   */
  mtime: number;
  /** POSIX permission bits (0..0o7777). */
  mode: number;
  /**
   * Feature "sync", `send --checksum`: the file's digest (the session's, lowercase hex), for a
   * receiver under policy `update` to compare its copy's content with (PROTOCOL.md §5.4).
   */
  digest?: string | undefined;
}

/** Optional capabilities, named in HELLO and WELCOME; a feature is used only if both name it. */
export const Feature = {
  /** Resume offers in PLAN (offset + prefix) and FILE_START. */
  resume: "resume",
  /**
   * Sync (PROTOCOL.md §9.3 `update`): a decision may say `unchanged`, an Ack `replaced`, and an
   * entry may carry its file's `digest` (`send --checksum`).
   */
  sync: "sync",
  /** Entries of kind "text" (PROTOCOL.md §5.15). */
  text: "text",
  /** LIST, LISTING and LISTED: a sync announces only what the receiver lacks (PROTOCOL.md §5.16). */
  listing: "listing",
} as const;

export interface Hello {
  software: string;
  /** Digest algorithms the sender can compute, best first. */
  digests: string[];
  /** Features the sender supports. */
  features: string[];
  /**
   * Identifies this transfer across reconnections and reruns (hex, up to 64
   * characters), so a receiver can tell a resumed transfer from a new one.
   */
  transfer?: string | undefined;
  /** The sender's host name as it gives it (informative, shown to the person receiving). */
  host?: string | undefined;
}

export interface ReceiverLimits {
  maxBatchEntries: number;
  maxFrame: number;
  maxPathBytes: number;
}

export interface Welcome {
  software: string;
  /** The digest every FILE_END of this session carries. */
  digest: string;
  limits: ReceiverLimits;
  /** Features the receiver supports (and will use where the sender named them too). */
  features: string[];
}

/** What a sender's sources hold in all: file entries, and their bytes (null: some size unknown). */
export interface Totals {
  files: number;
  bytes: number | null;
}

export interface Announce {
  batch: number;
  entries: Entry[];
  /** Optional: the whole transfer's totals, once the sender knows them (informative). */
  totals?: Totals;
}

/**
 * accept: send it; skip: not wanted (conflict policy); refuse: cannot be
 * stored (reason); have: the receiver already has this exact file from an
 * interrupted run of the same transfer.
 */
export type Action = "accept" | "skip" | "refuse" | "have";

export interface Decision {
  id: number;
  action: Action;
  /** Why a skip or refusal; shown to the person sending. */
  reason?: string | undefined;
  /**
   * Resume offer (only to senders with the "resume" feature): the receiver
   * holds the first `offset` bytes, whose digest is `prefix` (hex). The
   * sender confirms or declines it with FILE_START.
   */
  offset?: number | undefined;
  prefix?: string | undefined;
  /**
   * Feature "sync", on a `skip` of a file: the receiver's copy is the same (policy `update`:
   * size and mtime, or the entry's digest), so it was left as it is.
   */
  unchanged?: boolean | undefined;
}

export interface Plan {
  batch: number;
  decisions: Decision[];
}

export interface Ack {
  id: number;
  ok: boolean;
  /** The name it was stored under, relative to the receiver's directory (when ok). */
  name?: string | undefined;
  /** Why it failed (when not ok). */
  reason?: string | undefined;
  /** The data arrived damaged (length or digest): sending it again may succeed. */
  retry?: boolean | undefined;
  /** Not stored because the name exists (conflict policy "skip"); not a failure. */
  skipped?: boolean | undefined;
  /** Feature "sync", with `ok`: the file replaced an older one at its name (policy `update`). */
  replaced?: boolean | undefined;
}

export interface Acks {
  acks: Ack[];
}

export interface Bye {
  files: number;
  bytes: number;
  failed: number;
}

export interface ErrorMessage {
  code: string;
  message: string;
}

const encoder = new TextEncoder();
// ignoreBOM: a byte order mark stays in the text (as U+FEFF), so it is refused below rather
// than silently dropped (PROTOCOL.md §5.1).
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

export function encodeJson(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

/**
 * Parses a JSON object payload; throws `bad-message` if it is not one: not
 * UTF-8, a byte order mark, not JSON, not an object, or an object (at any
 * depth) that names a key twice (PROTOCOL.md §5.1).
 */
export function decodeJson(payload: Uint8Array, what: string): Record<string, unknown> {
  let text: string;
  let value: unknown;
  try {
    text = decoder.decode(payload);
  } catch {
    throw new ProtocolError("bad-message", `${what} is not valid UTF-8`);
  }
  if (text.charCodeAt(0) === 0xfeff) {
    throw new ProtocolError("bad-message", `${what} starts with a byte order mark`);
  }
  try {
    value = JSON.parse(text);
  } catch {
    throw new ProtocolError("bad-message", `${what} is not valid JSON`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ProtocolError("bad-message", `${what} is not a JSON object`);
  }
  const duplicate = duplicateKey(text);
  if (duplicate !== null) {
    throw new ProtocolError(
      "bad-message",
      `${what} names the key ${JSON.stringify(duplicate)} twice`,
    );
  }
  return value as Record<string, unknown>;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * The first key that an object of `text` names twice (compared after
 * unescaping, so `"a"` and `"\u0061"` are the same key), or null. `text` must
 * be valid JSON (JSON.parse took it): JSON.parse itself keeps the last value
 * of a repeated key without a word.
 */
function duplicateKey(text: string): string | null {
  const found = duplicateKeyFast(text);
  return found === undefined ? duplicateKeyInSets(text) : found;
}

/** The most keys of one object that `duplicateKeyFast` compares pairwise. */
const FAST_KEYS = 16;

/**
 * `duplicateKey` for what ferry's peers send (every object of a few keys, none escaped), with
 * no allocation per object: each key, as its place in `text`, is compared with the keys of its
 * object so far. Undefined where that does not answer (an escaped key, an object of more than
 * FAST_KEYS keys): `duplicateKeyInSets` does.
 */
function duplicateKeyFast(text: string): string | null | undefined {
  // Where the keys of the open objects are in `text` (without their quotes), outermost first.
  const from: number[] = [];
  const to: number[] = [];
  // One entry per open container: where its keys start in `from`, -1 for an array.
  const open: number[] = [];
  let keyNext = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const end = stringEnd(text, i);
      if (keyNext) {
        const first = open[open.length - 1]!;
        if (to.length - first >= FAST_KEYS) return undefined;
        const start = i + 1;
        const length = end - start;
        for (let j = start; j < end; j++) if (text.charCodeAt(j) === BACKSLASH) return undefined;
        for (let k = first; k < to.length; k++) {
          if (to[k]! - from[k]! === length && sameText(text, from[k]!, start, length)) {
            return text.slice(start, end);
          }
        }
        from.push(start);
        to.push(end);
        keyNext = false;
      }
      i = end;
    } else if (c === 0x7b) { // {
      open.push(to.length);
      keyNext = true;
    } else if (c === 0x5b) { // [
      open.push(-1);
      keyNext = false;
    } else if (c === 0x7d || c === 0x5d) { // } ]
      const first = open.pop()!;
      if (first >= 0) from.length = to.length = first;
      keyNext = false;
    } else if (c === 0x2c) { // ,
      keyNext = open.length > 0 && open[open.length - 1]! >= 0;
    }
  }
  return null;
}

/**
 * Where the string whose opening quote is at `start` ends: the next quote not escaped (preceded
 * by an even run of backslashes).
 */
function stringEnd(text: string, start: number): number {
  let end = text.indexOf('"', start + 1);
  for (;;) {
    let slashes = 0;
    for (let j = end - 1; text.charCodeAt(j) === BACKSLASH; j--) slashes++;
    if (slashes % 2 === 0) return end;
    end = text.indexOf('"', end + 1);
  }
}

/** Whether `text` holds the same `length` characters at `a` and at `b`. */
function sameText(text: string, a: number, b: number, length: number): boolean {
  for (let k = 0; k < length; k++) {
    if (text.charCodeAt(a + k) !== text.charCodeAt(b + k)) return false;
  }
  return true;
}

/** `duplicateKey` for any valid JSON: a set of keys (unescaped) per open object. */
function duplicateKeyInSets(text: string): string | null {
  // One entry per open container: the keys seen so far of an object, null for an array.
  const open: (Set<string> | null)[] = [];
  let keyNext = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const end = stringEnd(text, i);
      if (keyNext) {
        const raw = text.slice(i + 1, end);
        const key: string = raw.includes("\\") ? JSON.parse(text.slice(i, end + 1)) : raw;
        const keys = open[open.length - 1]!;
        if (keys.has(key)) return key;
        keys.add(key);
        keyNext = false;
      }
      i = end;
    } else if (c === 0x7b) { // {
      open.push(new Set());
      keyNext = true;
    } else if (c === 0x5b) { // [
      open.push(null);
      keyNext = false;
    } else if (c === 0x7d || c === 0x5d) { // } ]
      open.pop();
      keyNext = false;
    } else if (c === 0x2c) { // ,
      keyNext = open[open.length - 1] != null;
    }
  }
  return null;
}

function bad(what: string): never {
  throw new ProtocolError("bad-message", what);
}

function isUint(value: unknown, max: number): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= max;
}

function shortString(value: unknown, max: number): value is string {
  return typeof value === "string" && value.length <= max;
}

function isNameList(value: unknown): value is string[] {
  return Array.isArray(value) && value.length <= 16 && value.every((d) => shortString(d, 32));
}

export function decodeHello(payload: Uint8Array): Hello {
  const m = decodeJson(payload, "HELLO");
  if (!shortString(m.software, 200)) bad("HELLO.software must be a short string");
  if (!isNameList(m.digests)) bad("HELLO.digests must be a list of digest names");
  // Absent is []; null is not absent (§5.1): it is ill-typed, like any other non-list.
  const features = m.features === undefined ? [] : m.features;
  if (!isNameList(features)) bad("HELLO.features must be a list of names");
  if (
    m.transfer !== undefined &&
    !(typeof m.transfer === "string" && /^[0-9a-f]{16,64}$/.test(m.transfer))
  ) {
    bad("HELLO.transfer must be 16 to 64 lowercase hex digits");
  }
  if (m.host !== undefined && !shortString(m.host, MAX_HOST_UNITS)) {
    bad(`HELLO.host must be a string of at most ${MAX_HOST_UNITS} units`);
  }
  return {
    software: m.software,
    digests: m.digests,
    features,
    transfer: m.transfer,
    host: m.host as string | undefined,
  };
}

export function decodeWelcome(payload: Uint8Array): Welcome {
  const m = decodeJson(payload, "WELCOME");
  if (!shortString(m.software, 200)) bad("WELCOME.software must be a short string");
  if (!shortString(m.digest, 32)) bad("WELCOME.digest must be a digest name");
  const l = m.limits as Record<string, unknown> | null;
  if (
    typeof l !== "object" || l === null || !isUint(l.maxBatchEntries, MAX_BATCH_ENTRIES) ||
    l.maxBatchEntries < 1 || !isUint(l.maxFrame, MAX_FRAME_PAYLOAD) || l.maxFrame < 4096 ||
    !isUint(l.maxPathBytes, MAX_PATH_BYTES) || l.maxPathBytes < 1
  ) {
    bad("WELCOME.limits is malformed");
  }
  const features = m.features === undefined ? [] : m.features;
  if (!isNameList(features)) bad("WELCOME.features must be a list of names");
  return {
    software: m.software,
    digest: m.digest,
    features,
    limits: {
      maxBatchEntries: l.maxBatchEntries,
      maxFrame: l.maxFrame as number,
      maxPathBytes: l.maxPathBytes as number,
    },
  };
}

/**
 * Decodes an ANNOUNCE frame. The envelope must be right (fatal otherwise);
 * the entries are returned unchecked, for `checkEntry`.
 */
export function decodeAnnounce(
  payload: Uint8Array,
): { batch: number; entries: unknown[]; totals?: Totals } {
  const m = decodeJson(payload, "ANNOUNCE");
  if (!isUint(m.batch, MAX_ENTRY_ID)) bad("ANNOUNCE.batch must be a u32");
  if (!Array.isArray(m.entries) || m.entries.length === 0) {
    bad("ANNOUNCE.entries must be a non-empty list");
  }
  if (m.entries.length > MAX_BATCH_ENTRIES) {
    throw new ProtocolError(
      "too-many-entries",
      `ANNOUNCE has ${m.entries.length} entries; the limit is ${MAX_BATCH_ENTRIES}`,
    );
  }
  if (m.totals === undefined) return { batch: m.batch, entries: m.entries };
  const t = m.totals as Record<string, unknown> | null;
  if (
    typeof t !== "object" || t === null || !isUint(t.files, MAX_FILE_SIZE) ||
    (t.bytes !== null && !isUint(t.bytes, MAX_FILE_SIZE))
  ) {
    bad("ANNOUNCE.totals is malformed");
  }
  return {
    batch: m.batch,
    entries: m.entries,
    totals: { files: t.files as number, bytes: t.bytes as number | null },
  };
}

/** Extracts an entry's id; an entry without a valid id is fatal. */
export function entryId(raw: unknown): number {
  const id = (raw as { id?: unknown } | null)?.id;
  if (typeof raw !== "object" || raw === null || !isUint(id, MAX_ENTRY_ID)) {
    bad("every ANNOUNCE entry needs an id (u32)");
  }
  return id;
}

export type EntryCheck = { ok: true; entry: Entry } | { ok: false; id: number; reason: string };

/**
 * Checks the fields of one announced entry (not its path, which is the
 * receiver's storage rule). Out-of-range fields refuse this entry only.
 */
export function checkEntry(raw: unknown): EntryCheck {
  const id = entryId(raw);
  const e = raw as Record<string, unknown>;
  if (e.kind === "text") {
    // A message, not a file: no name, no time, no mode (§5.15); only its size counts.
    if (!isUint(e.size, MAX_TEXT_BYTES)) {
      return refusedEntry(id, `a text's size must be a whole number from 0 to ${MAX_TEXT_BYTES}`);
    }
    return { ok: true, entry: { id, path: "", kind: "text", size: e.size, mtime: 0, mode: 0 } };
  }
  if (typeof e.path !== "string") return refusedEntry(id, "path is not a string");
  if (e.kind !== "file" && e.kind !== "dir") {
    return refusedEntry(id, "kind must be 'file' or 'dir'");
  }
  let size: number | null = null;
  if (e.kind === "file") {
    if (e.size !== null && !isUint(e.size, MAX_FILE_SIZE)) {
      return refusedEntry(id, "size must be a whole number from 0 to 2^53-1, or null");
    }
    size = e.size;
  } else if (e.size !== undefined && e.size !== null) {
    return refusedEntry(id, "a directory has no size");
  }
  if (typeof e.mtime !== "number" || !Number.isFinite(e.mtime) || Math.abs(e.mtime) > 8.64e15) {
    return refusedEntry(id, "mtime must be a finite time in milliseconds");
  }
  if (!isUint(e.mode, 0o7777)) {
    return refusedEntry(id, "mode must be permission bits from 0 to 0o7777");
  }
  if (e.digest !== undefined && (e.kind !== "file" || !isHexDigest(e.digest))) {
    return refusedEntry(id, "digest must be a file's digest in lowercase hex");
  }
  // The protocol's precision is the millisecond: a fraction is cut toward zero, as a Date
  // would (§5.4), so every path that applies or compares the time sees the same integer.
  const mtime = Math.trunc(e.mtime) + 0; // + 0: no -0
  const entry: Entry = { id, path: e.path, kind: e.kind, size, mtime, mode: e.mode };
  if (e.digest !== undefined) entry.digest = e.digest as string;
  return { ok: true, entry };
}

/** The check of entry `id` that failed, for `reason` (a function, not a closure per entry). */
function refusedEntry(id: number, reason: string): EntryCheck {
  return { ok: false, id, reason };
}

/** A digest in lowercase hex: 2 to 128 digits, whole bytes (FILE_END carries up to 64 bytes). */
function isHexDigest(value: unknown): value is string {
  return typeof value === "string" && value.length % 2 === 0 && /^[0-9a-f]{2,128}$/.test(value);
}

function isAction(value: unknown): value is Action {
  return value === "accept" || value === "skip" || value === "refuse" || value === "have";
}

export function decodePlan(payload: Uint8Array): Plan {
  const m = decodeJson(payload, "PLAN");
  if (!isUint(m.batch, MAX_ENTRY_ID)) bad("PLAN.batch must be a u32");
  if (!Array.isArray(m.decisions) || m.decisions.length > MAX_BATCH_ENTRIES) {
    bad("PLAN.decisions must be a list");
  }
  const decisions = m.decisions.map((raw): Decision => {
    const d = raw as Record<string, unknown> | null;
    if (typeof d !== "object" || d === null || !isUint(d.id, MAX_ENTRY_ID) || !isAction(d.action)) {
      bad("PLAN decision is malformed");
    }
    if (d.reason !== undefined && !shortString(d.reason, 2000)) bad("PLAN reason is malformed");
    if (d.offset !== undefined && !isUint(d.offset, MAX_FILE_SIZE)) bad("PLAN offset is malformed");
    if (
      d.prefix !== undefined &&
      !(typeof d.prefix === "string" && /^[0-9a-f]{1,128}$/.test(d.prefix))
    ) {
      bad("PLAN prefix is malformed");
    }
    if ((d.offset ?? 0) > 0 && d.prefix === undefined) bad("PLAN offset without a prefix digest");
    if (d.unchanged !== undefined && typeof d.unchanged !== "boolean") {
      bad("PLAN unchanged must be a boolean");
    }
    if (d.unchanged === true && d.action !== "skip") bad("PLAN unchanged is only for a skip");
    return {
      id: d.id as number,
      action: d.action,
      reason: d.reason as string | undefined,
      offset: d.offset as number | undefined,
      prefix: d.prefix as string | undefined,
      unchanged: d.unchanged as boolean | undefined,
    };
  });
  return { batch: m.batch, decisions };
}

export function decodeAcks(payload: Uint8Array): Acks {
  const m = decodeJson(payload, "ACK");
  if (!Array.isArray(m.acks)) bad("ACK.acks must be a list");
  const acks = m.acks.map((raw): Ack => {
    const a = raw as Record<string, unknown> | null;
    if (typeof a !== "object" || a === null || !isUint(a.id, MAX_ENTRY_ID)) bad("ACK is malformed");
    if (typeof a.ok !== "boolean") bad("ACK.ok must be a boolean");
    if (a.name !== undefined && !shortString(a.name, 8192)) bad("ACK.name is malformed");
    if (a.reason !== undefined && !shortString(a.reason, 2000)) bad("ACK.reason is malformed");
    if (a.retry !== undefined && typeof a.retry !== "boolean") bad("ACK.retry must be a boolean");
    if (a.skipped !== undefined && typeof a.skipped !== "boolean") {
      bad("ACK.skipped must be a boolean");
    }
    if (a.replaced !== undefined && typeof a.replaced !== "boolean") {
      bad("ACK.replaced must be a boolean");
    }
    if (a.replaced === true && a.ok !== true) bad("ACK.replaced is only for a stored file");
    return {
      id: a.id as number,
      ok: a.ok,
      name: a.name as string | undefined,
      reason: a.reason as string | undefined,
      retry: a.retry as boolean | undefined,
      skipped: a.skipped as boolean | undefined,
      replaced: a.replaced as boolean | undefined,
    };
  });
  return { acks };
}

export function decodeBye(payload: Uint8Array): Bye {
  const m = decodeJson(payload, "BYE");
  if (
    !isUint(m.files, MAX_FILE_SIZE) || !isUint(m.bytes, MAX_FILE_SIZE) ||
    !isUint(m.failed, MAX_FILE_SIZE)
  ) {
    bad("BYE is malformed");
  }
  return { files: m.files, bytes: m.bytes as number, failed: m.failed as number };
}

/** What an ERROR's code may be: 1 to 64 of a–z, 0–9 and "-", starting with a letter or digit. */
const ERROR_CODE_TOKEN = /^[a-z0-9][a-z0-9-]{0,63}$/;

export function decodeError(payload: Uint8Array): ErrorMessage {
  let m: Record<string, unknown>;
  try {
    m = decodeJson(payload, "ERROR");
  } catch {
    return { code: "unknown", message: "the peer sent an unreadable error" };
  }
  return {
    // A code is shown to people and logged: only a token passes, anything else is "unknown".
    code: typeof m.code === "string" && ERROR_CODE_TOKEN.test(m.code) ? m.code : "unknown",
    message: shortString(m.message, 2000) ? m.message : "(no message)",
  };
}
