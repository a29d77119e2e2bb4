/**
 * ristretto255 (ristretto255.ts) from the system's libsodium.
 *
 * libsodium 1.0.18 decodes an encoding with its top bit (bit 255) set as
 * the same element without it, where RFC 9496 §4.3.1 refuses it as
 * non-canonical: such an encoding is refused here before libsodium sees
 * it. Every length is checked first, since the C calls read fixed lengths.
 */
import { type Libsodium, loadLibsodium } from "../native/libsodium.ts";
import { ELEMENT_BYTES, type Ristretto255 } from "./ristretto255.ts";

const UNIFORM_BYTES = 64;

/** libsodium's ristretto255, or null where the library does not load. Pass `lib` in tests. */
export function sodiumRistretto255(
  lib: Libsodium | null = loadLibsodium(),
): Ristretto255 | null {
  if (lib === null) return null;
  return {
    name: "libsodium",
    fromUniform(bytes: Uint8Array): Uint8Array {
      if (bytes.length !== UNIFORM_BYTES) {
        throw new RangeError(`element derivation takes ${UNIFORM_BYTES} bytes`);
      }
      const out = new Uint8Array(ELEMENT_BYTES);
      lib.crypto_core_ristretto255_from_hash(out, bytes);
      return out;
    },
    multiply(y: Uint8Array, x: Uint8Array): Uint8Array | null {
      if (y.length !== ELEMENT_BYTES) throw new RangeError(`a scalar is ${ELEMENT_BYTES} bytes`);
      if (!canonicalShape(x)) return null;
      const out = new Uint8Array(ELEMENT_BYTES);
      return lib.crypto_scalarmult_ristretto255(out, y, x) === 0 ? out : null;
    },
    isElement(x: Uint8Array): boolean {
      return canonicalShape(x) && lib.crypto_core_ristretto255_is_valid_point(x) === 1 &&
        x.some((b) => b !== 0);
    },
  };
}

/** 32 bytes with bit 255 clear: what libsodium is then left to decode. */
function canonicalShape(x: Uint8Array): boolean {
  return x.length === ELEMENT_BYTES && (x[ELEMENT_BYTES - 1]! & 0x80) === 0;
}
