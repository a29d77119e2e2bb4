/**
 * Key schedule of ferry's secure channel: from a CPace run's output (cpace.ts) to
 * the two traffic secrets, the two key-confirmation tags, and the record keys
 * derived from a traffic secret. Pure, no I/O.
 *
 * Only specified primitives are composed: SHA-256 (FIPS 180-4), HKDF-SHA-256
 * (RFC 5869, hkdf.ts) and HMAC-SHA-256 (RFC 2104), from OpenSSL or
 * @noble/hashes (short_hashes.ts).
 *
 *   TH  = SHA-256(lv_cat("ferry/1 transcript", sid, Ya, ADa, Yb, ADb))
 *   PRK = HKDF-Extract(salt = "" (HashLen zeros, RFC 5869 §2.2), IKM = ISK)
 *   k_c2s = HKDF-Expand(PRK, lv_cat("ferry/1 key c2s", TH), 32)     traffic secret c2s
 *   k_s2c = HKDF-Expand(PRK, lv_cat("ferry/1 key s2c", TH), 32)     traffic secret s2c
 *   kc_initiator = HKDF-Expand(PRK, lv_cat("ferry/1 confirm initiator", TH), 32)
 *   kc_responder = HKDF-Expand(PRK, lv_cat("ferry/1 confirm responder", TH), 32)
 *   tag_initiator = HMAC-SHA-256(kc_initiator, TH)
 *   tag_responder = HMAC-SHA-256(kc_responder, TH)
 *   record key of epoch e = HKDF-Expand(k_dir, lv_cat("ferry/1 record key", suite, u64be(e)), 32)
 *
 * - ISK goes through a KDF before use, as draft-irtf-cfrg-cpace-21 §4 and §10.3
 *   recommend; HKDF's `info` binds each output to its purpose and to the
 *   transcript (RFC 5869 §3.2). lv_cat is CPace's length-value encoding
 *   (draft §6.3), so no two (label, TH) pairs share an encoding.
 * - The transcript is already inside ISK (draft §7.2); binding it again costs
 *   nothing and makes the keys depend on the "ferry/1" version string.
 * - Key confirmation follows draft §10.4 ("MAC such as HMAC ... using a key
 *   mac_key derived from ISK", one tag per party) in the shape of TLS 1.3's
 *   Finished message (RFC 8446 §4.4.4: HMAC(finished_key, transcript hash)),
 *   which draft §10.5 cites. Unlike the draft's example (one mac_key, each party
 *   MACs its own message) each role gets its own key by label, so a tag can
 *   never be reflected back as the other role's tag.
 * - A traffic secret is never an AEAD key itself: each epoch of 2^16 records
 *   (record_layer.ts) gets its own key, and the suite's name is bound into it,
 *   so the same key never serves two algorithms. The secret is HashLen bytes,
 *   as HKDF-Expand's PRK must be (RFC 5869 §2.3); this is the shape of TLS
 *   1.3's traffic keys (RFC 8446 §7.3), with the epoch in place of KeyUpdate.
 * - Roles are fixed: the client is the CPace initiator, the server the
 *   responder; c2s is initiator-to-responder.
 */
import { hkdfExpand, hkdfExtract } from "./hkdf.ts";
import { hmacSha256, sha256 } from "./short_hashes.ts";
import { equalBytes } from "../protocol/bytes.ts";
import { type CpaceOutput, type CpaceRole, lvCat } from "./cpace.ts";

/** The protocol version string bound into every derivation. */
export const PROTOCOL_LABEL = "ferry/1";

const encoder = new TextEncoder();

/** The labels, each the `info` prefix of one HKDF-Expand (or of TH). Documented in docs/SECURITY.md ("Design of the secure channel"). */
export const LABELS = {
  transcript: `${PROTOCOL_LABEL} transcript`,
  keyC2s: `${PROTOCOL_LABEL} key c2s`,
  keyS2c: `${PROTOCOL_LABEL} key s2c`,
  confirmInitiator: `${PROTOCOL_LABEL} confirm initiator`,
  confirmResponder: `${PROTOCOL_LABEL} confirm responder`,
  recordKey: `${PROTOCOL_LABEL} record key`,
} as const;

/** Length of each traffic secret and record key (both suites take 256-bit keys). */
export const TRAFFIC_KEY_BYTES = 32;

export interface SessionKeys {
  /** Traffic secret for records client (initiator) to server (responder). */
  c2s: Uint8Array;
  /** Traffic secret for records server (responder) to client (initiator). */
  s2c: Uint8Array;
  /** Tag the initiator sends and the responder checks. */
  initiatorConfirmation: Uint8Array;
  /** Tag the responder sends and the initiator checks. */
  responderConfirmation: Uint8Array;
  /** TH: public, may be logged or shown to compare sessions. */
  transcriptHash: Uint8Array;
}

/** TH = SHA-256(lv_cat("ferry/1 transcript", sid, Ya, ADa, Yb, ADb)). */
export function transcriptHash(out: CpaceOutput): Uint8Array {
  return sha256(
    lvCat(encoder.encode(LABELS.transcript), out.sid, out.ya, out.ada, out.yb, out.adb),
  );
}

/** Derives both traffic keys and both confirmation tags (see the module comment). */
export function deriveSessionKeys(out: CpaceOutput): SessionKeys {
  const th = transcriptHash(out);
  const prk = hkdfExtract(out.isk); // salt absent: HashLen zero bytes (RFC 5869 §2.2)
  const okm = (label: string, length: number) =>
    hkdfExpand(prk, lvCat(encoder.encode(label), th), length);
  const c2s = okm(LABELS.keyC2s, TRAFFIC_KEY_BYTES);
  const s2c = okm(LABELS.keyS2c, TRAFFIC_KEY_BYTES);
  const kcInitiator = okm(LABELS.confirmInitiator, 32);
  const kcResponder = okm(LABELS.confirmResponder, 32);
  const initiatorConfirmation = hmacSha256(kcInitiator, th);
  const responderConfirmation = hmacSha256(kcResponder, th);
  prk.fill(0);
  kcInitiator.fill(0);
  kcResponder.fill(0);
  return { c2s, s2c, initiatorConfirmation, responderConfirmation, transcriptHash: th };
}

/** The confirmation tag we send, given our role. */
export function ownConfirmation(keys: SessionKeys, role: CpaceRole): Uint8Array {
  return role === "initiator" ? keys.initiatorConfirmation : keys.responderConfirmation;
}

/**
 * Checks the peer's confirmation tag in constant time for equal lengths (`equalBytes`: every
 * byte is compared, the differences OR-ed together). False means
 * the peer used a different code (or an attacker is guessing): report "wrong code" and
 * close the connection; never send records.
 */
export function verifyPeerConfirmation(
  keys: SessionKeys,
  role: CpaceRole,
  received: Uint8Array,
): boolean {
  const expected = role === "initiator" ? keys.responderConfirmation : keys.initiatorConfirmation;
  if (received.length !== expected.length) return false;
  return equalBytes(expected, received);
}

/**
 * The AEAD key of one epoch of a direction (see the module comment). `suite`
 * is the record suite's name, e.g. "aes-256-gcm"; `epoch` a safe integer ≥ 0.
 */
export function recordKey(secret: Uint8Array, suite: string, epoch: number): Uint8Array {
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw new RangeError("epoch must be >= 0");
  const e = new Uint8Array(8);
  new DataView(e.buffer).setBigUint64(0, BigInt(epoch));
  return hkdfExpand(
    secret,
    lvCat(encoder.encode(LABELS.recordKey), encoder.encode(suite), e),
    TRAFFIC_KEY_BYTES,
  );
}

/** The traffic secrets for our sending and receiving directions, given our role. */
export function trafficKeys(
  keys: SessionKeys,
  role: CpaceRole,
): { send: Uint8Array; receive: Uint8Array } {
  return role === "initiator"
    ? { send: keys.c2s, receive: keys.s2c }
    : { send: keys.s2c, receive: keys.c2s };
}
