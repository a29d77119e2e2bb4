/**
 * The ristretto255 group (RFC 9496) as CPace uses it (cpace.ts), on
 * encodings only: element derivation from 64 uniform bytes, and the product
 * of a scalar and an encoded element. Two builds give the same answers,
 * checked against each other and the draft's vectors (tests/cpace_test.ts):
 *
 * - libsodium's, through Deno's FFI where the system has it
 *   (ristretto255_sodium.ts): constant-time C, about a hundredth of the
 *   JavaScript's time, and @noble/curves is then never loaded;
 * - @noble/curves' (ristretto255_noble.ts) everywhere else.
 *
 * `loadRistretto255()` (ristretto255_load.ts) picks one.
 */

/** The group's operations, on 32-byte encodings and 32-byte little-endian scalars. */
export interface Ristretto255 {
  /** Which build: shown by tests. */
  readonly name: "libsodium" | "@noble/curves";
  /** Element derivation (RFC 9496 §4.3.4): 64 uniform bytes to an encoded element. */
  fromUniform(bytes: Uint8Array): Uint8Array;
  /**
   * encode(y·decode(x)) for a scalar `y` in [1, GROUP_ORDER); null where `x` does not
   * decode (RFC 9496 §4.3.1: a wrong length or a non-canonical encoding included) or is
   * the identity, whose every multiple is the identity.
   */
  multiply(y: Uint8Array, x: Uint8Array): Uint8Array | null;
  /** Whether `x` decodes to an element other than the identity. */
  isElement(x: Uint8Array): boolean;
}

/** The group's order (RFC 9496 §4.3): 2^252 + 27742317777372353535851937790883648493. */
export const GROUP_ORDER = 2n ** 252n + 27742317777372353535851937790883648493n;

/** Length of an encoded element, and of a scalar. */
export const ELEMENT_BYTES = 32;

/**
 * The integer of `y` if it is a scalar both builds take: 32 bytes, little-endian, in
 * [1, GROUP_ORDER); else a RangeError. (CPace's own check comes first and says so in its own
 * words.)
 */
export function checkScalar(y: Uint8Array): bigint {
  if (y.length !== ELEMENT_BYTES) throw new RangeError(`a scalar is ${ELEMENT_BYTES} bytes`);
  let n = 0n;
  for (let i = y.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(y[i]!);
  if (n === 0n || n >= GROUP_ORDER) throw new RangeError("a scalar must be in [1, group order)");
  return n;
}
