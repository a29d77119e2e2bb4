/**
 * ristretto255 (ristretto255.ts) from the system's libsodium.
 *
 * libsodium 1.0.18 decodes an encoding with its top bit (bit 255) set as
 * the same element without it, where RFC 9496 §4.3.1 refuses it as
 * non-canonical: such an encoding is refused here before libsodium sees
 * it. Every length is checked first, since the C calls read fixed lengths,
 * and scalars as @noble/curves' build checks them. The build is used only
 * after it gives RFC 9496's first one-way-map vector and the CPace draft's
 * B.3.10 product.
 */
import { bytesToHex as hex, hexToBytes as bytes } from "../protocol/bytes.ts";
import { type Libsodium, loadLibsodium } from "../native/libsodium.ts";
import { checkScalar, ELEMENT_BYTES, type Ristretto255 } from "./ristretto255.ts";

const UNIFORM_BYTES = 64;

/**
 * libsodium's ristretto255, or null where the library does not load or gives a wrong known
 * answer. Pass `lib` in tests.
 */
export function sodiumRistretto255(
  lib: Libsodium | null = loadLibsodium(),
): Ristretto255 | null {
  if (lib === null) return null;
  const group = build(lib);
  try {
    return passesKnownAnswers(group) ? group : null;
  } catch {
    return null;
  }
}

function build(lib: Libsodium): Ristretto255 {
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
      checkScalar(y);
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

function passesKnownAnswers(group: Ristretto255): boolean {
  // RFC 9496 Appendix A.3, the first input of the one-way map.
  const uniform = bytes(
    "5d1be09e3d0c82fc538112490e35701979d99e06ca3e2b5b54bffe8b4dc772c1" +
      "4d98b696a1bbfb5ca32c436cc61c16563790306c79eaca7705668b47dffe5bb6",
  );
  if (
    hex(group.fromUniform(uniform)) !==
      "3066f82a1a747d45120d1740f14358531a8f04bbffe6a819f86dfe50f44a0a46"
  ) {
    return false;
  }
  // draft-irtf-cfrg-cpace-21 B.3.10: s·X.
  const s = bytes("7cd0e075fa7955ba52c02759a6c90dbbfc10e6d40aea8d283e407d88cf538a05");
  const x = bytes("2c3c6b8c4f3800e7aef6864025b4ed79bd599117e427c41bd47d93d654b4a51c");
  const product = group.multiply(s, x);
  return product !== null &&
    hex(product) === "7c13645fe790a468f62c39beb7388e541d8405d1ade69d1778c5fe3e7f6b600e";
}
