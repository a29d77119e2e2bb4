/**
 * Finding a ferry server on the LAN: the datagrams. Pure encoding and
 * decoding, no I/O; decoding never throws (anything malformed is null).
 *
 * `ferry send` without `--to` sends a QUERY by UDP to port 4455 (the same
 * number as the TCP port; `serve --discovery-port` changes it) at the
 * broadcast addresses and the multicast group 239.255.44.55; every
 * `ferry serve` that hears it (unless started with `--no-discovery`) sends
 * one ANSWER back to the query's source address and port.
 *
 * QUERY, exactly 256 bytes (all integers big-endian):
 *
 *     0   4  magic "FRYD"
 *     4   1  version (1)
 *     5   1  kind (1 = query)
 *     6   2  zero
 *     8   8  nonce (random; the answer echoes it)
 *    16 240  zero (padding: a query is never smaller than its answer)
 *
 * ANSWER, 21 to 219 bytes, nothing after the last address:
 *
 *     0   4  magic "FRYD"
 *     4   1  version (1)
 *     5   1  kind (2 = answer)
 *     6   1  flags: bit 0 = the server listens on all of its addresses;
 *               bit 1 = the server is open (asks no code); others zero
 *     7   1  zero
 *     8   8  the query's nonce
 *    16   2  TCP port of the server (1..65535)
 *    18   1  name length N (1..63)
 *    19   N  name (UTF-8, no control characters): the server's host name
 *    19+N 1  address count A (0..8)
 *    ...     A addresses: 1 byte family (4 or 6), then 4 or 16 bytes
 *
 * An answer carries only a name, addresses and a port: never the code, the
 * folder, or anything else about the server. It is never larger than the
 * query that asked for it (no amplification), and a server answers a
 * limited number of queries a second (see responder.ts).
 */

export const DISCOVERY_PORT = 4455;
/** The IPv4 multicast group queries also go to (organization-local scope). */
export const DISCOVERY_GROUP = "239.255.44.55";
export const DISCOVERY_VERSION = 1;
export const QUERY_BYTES = 256;
export const MAX_NAME_BYTES = 63;
export const MAX_ADDRESSES = 8;
/** The largest answer: header, port, name, addresses. */
export const MAX_ANSWER_BYTES = 16 + 2 + 1 + MAX_NAME_BYTES + 1 + MAX_ADDRESSES * 17;

export { formatIp, parseIp } from "../transport/ip_address.ts";
import { formatIp, parseIp } from "../transport/ip_address.ts";

const MAGIC = [0x46, 0x52, 0x59, 0x44]; // "FRYD"
const KIND_QUERY = 1;
const KIND_ANSWER = 2;
const FLAG_ANY = 1;
const FLAG_OPEN = 2;
const NONCE_BYTES = 8;

export interface Query {
  nonce: Uint8Array;
}

export interface Answer {
  nonce: Uint8Array;
  /** The server's host name (may be anything: escape it before showing it). */
  name: string;
  /** Where the server can be reached (IPv4 dotted, IPv6 canonical text). */
  addresses: string[];
  port: number;
  /** The server listens on all its addresses: the answer's source address reaches it. */
  any: boolean;
  /** The server asks no code (`serve --open`): a sender with a code never picks it. */
  open: boolean;
}

export function newNonce(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
}

function header(out: Uint8Array, kind: number): void {
  out.set(MAGIC, 0);
  out[4] = DISCOVERY_VERSION;
  out[5] = kind;
}

function hasHeader(bytes: Uint8Array, kind: number): boolean {
  return bytes[0] === MAGIC[0] && bytes[1] === MAGIC[1] && bytes[2] === MAGIC[2] &&
    bytes[3] === MAGIC[3] && bytes[4] === DISCOVERY_VERSION && bytes[5] === kind;
}

export function encodeQuery(q: Query): Uint8Array {
  if (q.nonce.length !== NONCE_BYTES) throw new RangeError("the nonce must be 8 bytes");
  const out = new Uint8Array(QUERY_BYTES);
  header(out, KIND_QUERY);
  out.set(q.nonce, 8);
  return out;
}

export function decodeQuery(bytes: Uint8Array): Query | null {
  if (bytes.length !== QUERY_BYTES || !hasHeader(bytes, KIND_QUERY)) return null;
  if (bytes[6] !== 0 || bytes[7] !== 0) return null;
  for (let i = 16; i < QUERY_BYTES; i++) if (bytes[i] !== 0) return null;
  return { nonce: bytes.slice(8, 16) };
}

// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** A host name as an answer may carry it: control characters out, at most 63 bytes of UTF-8. */
export function answerName(name: string): string {
  // deno-lint-ignore no-control-regex
  let clean = name.replace(/[\u0000-\u001f\u007f-\u009f]/g, "").trim();
  if (clean === "") clean = "ferry";
  const encoder = new TextEncoder();
  while (encoder.encode(clean).length > MAX_NAME_BYTES) clean = [...clean].slice(0, -1).join("");
  return clean;
}

export function encodeAnswer(a: Answer): Uint8Array {
  if (a.nonce.length !== NONCE_BYTES) throw new RangeError("the nonce must be 8 bytes");
  if (!Number.isInteger(a.port) || a.port < 1 || a.port > 65535) {
    throw new RangeError(`bad port ${a.port}`);
  }
  const name = new TextEncoder().encode(a.name);
  if (name.length < 1 || name.length > MAX_NAME_BYTES || CONTROL.test(a.name)) {
    throw new RangeError("bad name");
  }
  const addresses = a.addresses.slice(0, MAX_ADDRESSES).map((text) => {
    const raw = parseIp(text);
    if (raw === null) throw new RangeError(`bad address '${text}'`);
    return raw;
  });
  const size = 19 + name.length + 1 + addresses.reduce((n, raw) => n + 1 + raw.length, 0);
  const out = new Uint8Array(size);
  header(out, KIND_ANSWER);
  out[6] = (a.any ? FLAG_ANY : 0) | (a.open ? FLAG_OPEN : 0);
  out.set(a.nonce, 8);
  out[16] = a.port >> 8;
  out[17] = a.port & 0xff;
  out[18] = name.length;
  out.set(name, 19);
  let at = 19 + name.length;
  out[at++] = addresses.length;
  for (const raw of addresses) {
    out[at++] = raw.length === 4 ? 4 : 6;
    out.set(raw, at);
    at += raw.length;
  }
  return out;
}

export function decodeAnswer(bytes: Uint8Array): Answer | null {
  if (bytes.length < 21 || bytes.length > MAX_ANSWER_BYTES) return null;
  if (!hasHeader(bytes, KIND_ANSWER)) return null;
  // The length was checked above: bytes 0..20 are there.
  const flags = bytes[6]!;
  if ((flags & ~(FLAG_ANY | FLAG_OPEN)) !== 0 || bytes[7] !== 0) return null;
  const port = (bytes[16]! << 8) | bytes[17]!;
  if (port === 0) return null;
  const nameLength = bytes[18]!;
  if (nameLength < 1 || nameLength > MAX_NAME_BYTES || 19 + nameLength + 1 > bytes.length) {
    return null;
  }
  let name: string;
  try {
    name = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(
      bytes.subarray(19, 19 + nameLength),
    );
  } catch {
    return null;
  }
  if (CONTROL.test(name)) return null;
  let at = 19 + nameLength;
  const count = bytes[at++]!; // 19 + nameLength + 1 <= bytes.length, checked above
  if (count > MAX_ADDRESSES) return null;
  const addresses: string[] = [];
  for (let i = 0; i < count; i++) {
    const family = bytes[at++];
    const length = family === 4 ? 4 : family === 6 ? 16 : -1;
    if (length < 0 || at + length > bytes.length) return null;
    addresses.push(formatIp(bytes.subarray(at, at + length)));
    at += length;
  }
  if (at !== bytes.length) return null;
  return {
    nonce: bytes.slice(8, 16),
    name,
    addresses: [...new Set(addresses)],
    port,
    any: (flags & FLAG_ANY) !== 0,
    open: (flags & FLAG_OPEN) !== 0,
  };
}
