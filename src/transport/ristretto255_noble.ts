/**
 * ristretto255 (ristretto255.ts) from @noble/curves: `fromBytes` is the
 * RFC 9496 §4.3.1 decode (it refuses non-canonical encodings), `toBytes`
 * the §4.3.2 encode, and `ristretto255_hasher.deriveToCurve` the §4.3.4
 * element derivation.
 */
import { ristretto255, ristretto255_hasher } from "@noble/curves/ed25519.js";
import { checkScalar, type Ristretto255 } from "./ristretto255.ts";

type Point = InstanceType<typeof ristretto255.Point>;

export const nobleRistretto255: Ristretto255 = {
  name: "@noble/curves",
  fromUniform(bytes: Uint8Array): Uint8Array {
    const derive = ristretto255_hasher.deriveToCurve;
    if (derive === undefined) throw new Error("ristretto255 element derivation is missing");
    return (derive(bytes) as Point).toBytes();
  },
  multiply(y: Uint8Array, x: Uint8Array): Uint8Array | null {
    // An integer, which JavaScript cannot wipe, unlike the caller's bytes.
    const n = checkScalar(y);
    const point = decoded(x);
    return point === null ? null : point.multiply(n).toBytes();
  },
  isElement(x: Uint8Array): boolean {
    return decoded(x) !== null;
  },
};

/** `x` decoded, or null where it does not decode or is the identity. */
function decoded(x: Uint8Array): Point | null {
  let point: Point;
  try {
    point = ristretto255.Point.fromBytes(x) as Point;
  } catch {
    return null;
  }
  return point.is0() ? null : point;
}
