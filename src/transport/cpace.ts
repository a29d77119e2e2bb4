/**
 * CPace (balanced PAKE) over ristretto255 with SHA-512: the cipher suite
 * CPACE-RISTR255-SHA512 of draft-irtf-cfrg-cpace-21 ("CPace, a balanced
 * composable PAKE", 23 April 2026), in the initiator-responder setting.
 * Pure: no I/O, no clock. Section numbers below are the draft's.
 *
 * Flow (§7.1, §7.2):
 *
 *   initiator A (client)                     responder B (server)
 *   g  = calculate_generator(PRS, CI, sid)   g  = calculate_generator(PRS, CI, sid)
 *   ya = sample_scalar(); Ya = ya*g          yb = sample_scalar(); Yb = yb*g
 *                 ------------ Ya, ADa ----------->
 *                 <----------- Yb, ADb ------------
 *   K = scalar_mult_vfy(ya, Yb); abort if K = I   K = scalar_mult_vfy(yb, Ya); abort if K = I
 *   ISK = SHA-512(lv_cat(DSI || "_ISK", sid, K) || transcript_ir(Ya, ADa, Yb, ADb))
 *
 * K is never exposed (§10.3); only ISK leaves this module. ISK is meant to go
 * through a KDF before use (§4, §10.3): see key_schedule.ts.
 *
 * The group (RFC 9496) comes in as a parameter, libsodium's or
 * @noble/curves' (ristretto255.ts): both decode by RFC 9496 §4.3.1 (refusing
 * non-canonical encodings), encode by §4.3.2, and derive elements from 64
 * uniform bytes by §4.3.4. Scalars stay 32-byte little-endian strings, wiped
 * once used or abandoned (`cpaceAbandon`); @noble/curves' build also makes a
 * BigInt of each, which JavaScript cannot wipe.
 */
import { sha512 } from "./short_hashes.ts";
import { concatBytes } from "../protocol/bytes.ts";
import { checkScalar, ELEMENT_BYTES, type Ristretto255 } from "./ristretto255.ts";

/** Thrown when a CPace run must abort (§7.2, §9) or is misused. */
export class CpaceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CpaceError";
  }
}

const encoder = new TextEncoder();

/** G_Ristretto255.DSI (§8.3). */
export const CPACE_DSI: Uint8Array = encoder.encode("CPaceRistretto255");
/** G.DSI || b"_ISK", the ISK domain separator (§7.2). */
const DSI_ISK = encoder.encode("CPaceRistretto255_ISK");
/** H.s_in_bytes for SHA-512: its input block size (§6.2). */
const SHA512_S_IN_BYTES = 128;
/** G_Ristretto255.field_size_bytes (§8.3): also the length of every encoded element. */
const FIELD_SIZE_BYTES = ELEMENT_BYTES;
/** Length of a CPace share (Ya or Yb) on the wire: one encoded ristretto255 element. */
export const CPACE_SHARE_BYTES = FIELD_SIZE_BYTES;
/** Length of ISK: H.b_in_bytes for SHA-512 (§6.2). */
export const CPACE_ISK_BYTES = 64;
/** G.I: the encoding of the neutral element, 32 zero bytes (RFC 9496 §4.3.2, §8.3). */
const IDENTITY_ENCODING = new Uint8Array(FIELD_SIZE_BYTES);

// ---------------------------------------------------------------------------
// String utilities (§6.3, Appendix A.1, A.3)

/** prepend_len(data): LEB128 length, then the data (§6.3, Appendix A.1.1). */
export function prependLen(data: Uint8Array): Uint8Array {
  const len: number[] = [];
  let length = data.length;
  while (true) {
    len.push(length < 128 ? length : (length & 0x7f) | 0x80);
    length = Math.floor(length / 128);
    if (length === 0) break;
  }
  const out = new Uint8Array(len.length + data.length);
  out.set(len, 0);
  out.set(data, len.length);
  return out;
}

/** lv_cat(a0, a1, ...): the concatenation of prepend_len(ai) (§6.3, Appendix A.1.3). */
export function lvCat(...args: Uint8Array[]): Uint8Array {
  return concatBytes(...args.map(prependLen));
}

/** transcript_ir(Ya, ADa, Yb, ADb) = lv_cat(Ya, ADa) || lv_cat(Yb, ADb) (§6.3, Appendix A.3.4). */
export function transcriptIr(
  ya: Uint8Array,
  ada: Uint8Array,
  yb: Uint8Array,
  adb: Uint8Array,
): Uint8Array {
  return concatBytes(lvCat(ya, ada), lvCat(yb, adb));
}

/**
 * generator_string(DSI, PRS, CI, sid, s_in_bytes) (§8.1, Appendix A.2):
 * lv_cat(DSI, PRS, zero_bytes(len_zpad), CI, sid) with
 * len_zpad = max(0, s_in_bytes - 1 - len(prepend_len(PRS)) - len(prepend_len(DSI))).
 */
export function generatorString(
  dsi: Uint8Array,
  prs: Uint8Array,
  ci: Uint8Array,
  sid: Uint8Array,
  sInBytes: number,
): Uint8Array {
  const lenZpad = Math.max(
    0,
    sInBytes - 1 - prependLen(prs).length - prependLen(dsi).length,
  );
  return lvCat(dsi, prs, new Uint8Array(lenZpad), ci, sid);
}

// ---------------------------------------------------------------------------
// Group environment G_Ristretto255 (§8.3)

/**
 * G.calculate_generator(H, PRS, CI, sid) (§8.3): gen_str = generator_string(G.DSI, PRS,
 * CI, sid, H.s_in_bytes); gen_str_hash = H.hash(gen_str, 2 * field_size_bytes) (SHA-512,
 * all 64 bytes); _g = element_derivation(gen_str_hash) (RFC 9496 §4.3.4).
 */
/** The encoded generator for (PRS, CI, sid); exposed for the draft's test vectors (Appendix B.3.1). */
export function calculateGenerator(
  prs: Uint8Array,
  ci: Uint8Array,
  sid: Uint8Array,
  group: Ristretto255,
): Uint8Array {
  const genStr = generatorString(CPACE_DSI, prs, ci, sid, SHA512_S_IN_BYTES);
  const genStrHash = sha512(genStr); // 64 bytes = 2 * G.field_size_bytes
  return group.fromUniform(genStrHash);
}

/** A copy of a scalar's little-endian encoding, checked to be in [1, group_order). */
function checkedScalar(bytes: Uint8Array): Uint8Array {
  if (bytes.length !== FIELD_SIZE_BYTES) {
    throw new CpaceError(`a scalar is ${FIELD_SIZE_BYTES} bytes, got ${bytes.length}`);
  }
  try {
    checkScalar(bytes);
  } catch {
    throw new CpaceError("scalar out of range: expected 1 <= y < group_order");
  }
  return bytes.slice();
}

/**
 * G.sample_scalar() as RECOMMENDED in §8.3: 32 random bytes with the bits above
 * group_size_bits (252) cleared, read little-endian. A zero (probability 2^-252) is
 * drawn again, since zero is not a valid Diffie-Hellman key.
 */
function sampleScalar(): Uint8Array {
  const bytes = new Uint8Array(FIELD_SIZE_BYTES);
  while (true) {
    crypto.getRandomValues(bytes);
    bytes[FIELD_SIZE_BYTES - 1]! &= 0x0f; // keep bits 248..251, clear 252..255
    if (bytes.some((b) => b !== 0)) return bytes;
  }
}

/**
 * G.scalar_mult_vfy(y, X) (§8.3): G.I if decode(X) fails, else encode(y * decode(X)).
 * A decodable X that is the neutral element also gives G.I. `y` is the little-endian
 * scalar encoding. Exposed for the draft's test vectors (Appendix B.3.4, B.3.10, B.3.11).
 */
export function scalarMultVfy(y: Uint8Array, x: Uint8Array, group: Ristretto255): Uint8Array {
  const scalar = checkedScalar(y);
  try {
    return group.multiply(scalar, x) ?? IDENTITY_ENCODING.slice();
  } finally {
    scalar.fill(0);
  }
}

/**
 * Whether `x` decodes to a ristretto255 element other than the neutral one: exactly when
 * `scalarMultVfy(1, x)` is not G.I, without the multiplication (a share is public).
 */
export function isValidShare(x: Uint8Array, group: Ristretto255): boolean {
  return group.isElement(x);
}

function isIdentityEncoding(k: Uint8Array): boolean {
  // K = G.I is a public abort condition (§7.2), so an early-exit comparison is fine.
  return k.length === IDENTITY_ENCODING.length && k.every((b) => b === 0);
}

// ---------------------------------------------------------------------------
// The protocol (§7.2)

/** Which CPace role this party plays (§7). ferry: the client initiates, the server responds. */
export type CpaceRole = "initiator" | "responder";

/** One party's state between sending its share and receiving the peer's. Single use. */
class CpaceSession {
  #y: Uint8Array | null;
  constructor(
    y: Uint8Array,
    readonly group: Ristretto255,
    readonly role: CpaceRole,
    readonly sid: Uint8Array,
    readonly ownShare: Uint8Array,
    readonly ownAd: Uint8Array,
  ) {
    this.#y = y;
  }

  /** Hands out the secret scalar once: scalars MUST NOT be reused (§10.9). The taker wipes it. */
  takeScalar(): Uint8Array {
    const y = this.#y;
    if (y === null) throw new CpaceError("this CPace state was already used");
    this.#y = null;
    return y;
  }

  /** Wipes the scalar if it was not taken: a run that ends before `cpaceFinish`. */
  dispose(): void {
    this.#y?.fill(0);
    this.#y = null;
  }
}

/** Opaque per-run state returned by `cpaceStart` and consumed by `cpaceFinish`. */
export type CpaceState = CpaceSession;

/**
 * Ends a run that will not reach `cpaceFinish` (the peer left, an error): its scalar is wiped.
 * After `cpaceFinish` it does nothing.
 */
export function cpaceAbandon(state: CpaceState): void {
  if (state instanceof CpaceSession) state.dispose();
}

export interface CpaceStartOptions {
  /** Password-related string: the shared code, canonicalized and UTF-8 encoded (§4.1). */
  prs: Uint8Array;
  /** Channel identifier, identical on both sides, never sent (§4.1, §10.1.1). */
  ci: Uint8Array;
  /** Session identifier, identical on both sides, unique per session (§4.1, §10.9). */
  sid: Uint8Array;
  /** Our associated data, ADa (initiator) or ADb (responder); sent in clear beside our share. */
  ad: Uint8Array;
  role: CpaceRole;
  /** The group's build (ristretto255.ts: `loadRistretto255()`). */
  group: Ristretto255;
  /** Tests only: our scalar, 32 bytes little-endian, in [1, group_order). Never set it otherwise. */
  scalar?: Uint8Array;
}

export interface CpaceStart {
  state: CpaceState;
  /** Our share, Ya (initiator) or Yb (responder): 32 bytes, to send together with our AD. */
  message: Uint8Array;
}

/** The result of a successful run: ISK and the public inputs the key schedule binds. */
export interface CpaceOutput {
  /** Intermediate session key, 64 bytes (§7.2). Secret: derive keys from it, never use it directly. */
  isk: Uint8Array;
  sid: Uint8Array;
  /** The initiator's share and AD, then the responder's, whichever side we were. */
  ya: Uint8Array;
  ada: Uint8Array;
  yb: Uint8Array;
  adb: Uint8Array;
}

/**
 * Computes the generator from (PRS, CI, sid), samples our scalar and returns our share
 * (§7.2: g = G.calculate_generator(H, PRS, CI, sid), y = G.sample_scalar(),
 * Y = G.scalar_mult(y, g)).
 */
export function cpaceStart(opts: CpaceStartOptions): CpaceStart {
  if (opts.role !== "initiator" && opts.role !== "responder") {
    throw new CpaceError(`unknown CPace role: ${String(opts.role)}`);
  }
  const { group } = opts;
  const g = calculateGenerator(opts.prs, opts.ci, opts.sid, group);
  const y = opts.scalar === undefined ? sampleScalar() : checkedScalar(opts.scalar);
  // G.scalar_mult(y, _g) = encode(y * _g) (§8.3). The generator of a fixed hash output is
  // never the identity in practice; checking costs nothing and keeps the invariant explicit.
  let share: Uint8Array | null;
  try {
    share = group.multiply(y, g);
  } catch (err) {
    y.fill(0);
    throw err;
  }
  if (share === null || isIdentityEncoding(share)) {
    y.fill(0);
    throw new CpaceError("derived generator is the neutral element");
  }
  const state = new CpaceSession(y, group, opts.role, opts.sid.slice(), share, opts.ad.slice());
  return { state, message: share.slice() };
}

/**
 * Receives the peer's share and AD, computes K = G.scalar_mult_vfy(y, Y_peer), aborts
 * (throws CpaceError) if K = G.I — an undecodable share, a share of the wrong length or
 * the neutral element (§7.2, §8.3.1, §9) — and returns
 * ISK = SHA-512(lv_cat(G.DSI || b"_ISK", sid, K) || transcript_ir(Ya, ADa, Yb, ADb)).
 */
export function cpaceFinish(
  state: CpaceState,
  peerMessage: Uint8Array,
  peerAd: Uint8Array,
): CpaceOutput {
  if (!(state instanceof CpaceSession)) throw new CpaceError("not a CPace state");
  const y = state.takeScalar();
  let k: Uint8Array;
  const peerShare = peerMessage.slice();
  try {
    if (peerMessage.length !== CPACE_SHARE_BYTES) {
      throw new CpaceError(
        `invalid CPace share: expected ${CPACE_SHARE_BYTES} bytes, got ${peerMessage.length}`,
      );
    }
    k = state.group.multiply(y, peerShare) ?? IDENTITY_ENCODING.slice();
  } finally {
    y.fill(0);
  }
  if (isIdentityEncoding(k)) {
    throw new CpaceError("invalid CPace share: not a valid ristretto255 element or the identity");
  }
  const initiator = state.role === "initiator";
  const ya = initiator ? state.ownShare : peerShare;
  const ada = initiator ? state.ownAd : peerAd.slice();
  const yb = initiator ? peerShare : state.ownShare;
  const adb = initiator ? peerAd.slice() : state.ownAd;
  const isk = sha512(concatBytes(lvCat(DSI_ISK, state.sid, k), transcriptIr(ya, ada, yb, adb)));
  k.fill(0);
  return { isk, sid: state.sid, ya, ada, yb, adb };
}
