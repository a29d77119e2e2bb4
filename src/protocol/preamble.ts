/**
 * The 8-byte preamble each side sends first, before any frame:
 *
 *   "FERRY" (5 ASCII bytes) | version u8 | channel u8 | reserved u8 (0)
 *
 * `channel` names what runs below the framing: 1, the secure channel
 * (default), or 0, plain TCP. The frames above are the same on both.
 */
import { ProtocolError } from "./errors.ts";

export const PROTOCOL_VERSION = 1;
export const PREAMBLE_BYTES = 8;
export const MAGIC = new Uint8Array([0x46, 0x45, 0x52, 0x52, 0x59]); // "FERRY"

export const Channel = {
  /** Plain TCP: no code, no encryption. Only between peers that both ask for it (benchmarks). */
  plain: 0,
  /** CPace (ristretto255) on the code, then AES-256-GCM or ChaCha20-Poly1305 records: the default. */
  cpace: 1,
} as const;

export interface Preamble {
  version: number;
  channel: number;
}

export function encodePreamble(p: Preamble): Uint8Array {
  const out = new Uint8Array(PREAMBLE_BYTES);
  out.set(MAGIC, 0);
  out[5] = p.version;
  out[6] = p.channel;
  out[7] = 0;
  return out;
}

/** Decodes a preamble; throws `not-ferry` if the magic is wrong. */
export function decodePreamble(bytes: Uint8Array): Preamble {
  if (bytes.length !== PREAMBLE_BYTES || !MAGIC.every((b, i) => bytes[i] === b)) {
    throw new ProtocolError("not-ferry", "the peer does not speak the ferry protocol");
  }
  return { version: bytes[5]!, channel: bytes[6]! }; // PREAMBLE_BYTES long, checked above
}
