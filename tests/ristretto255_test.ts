/**
 * The two builds of ristretto255 (src/transport/ristretto255.ts): libsodium's
 * through FFI and @noble/curves'. They must give the same answers on every
 * input, valid or not; the draft's CPace vectors run on both in cpace_test.ts.
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import { type Libsodium, loadLibsodium } from "../src/native/libsodium.ts";
import { GROUP_ORDER } from "../src/transport/ristretto255.ts";
import { loadRistretto255 } from "../src/transport/ristretto255_load.ts";
import { nobleRistretto255 } from "../src/transport/ristretto255_noble.ts";
import { sodiumRistretto255 } from "../src/transport/ristretto255_sodium.ts";

const sodium = sodiumRistretto255();
const noble = nobleRistretto255;
/** Said in the names of the tests that need libsodium, where they are skipped. */
const SKIPPED = sodium === null
  ? " (skipped: libsodium is not at any of LIBSODIUM_PATHS on this system)"
  : "";

function random(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}

/** A random scalar in [1, 2^252), as CPace samples them. */
function scalar(): Uint8Array {
  const y = random(32);
  y[31]! &= 0x0f;
  y[0]! |= 1;
  return y;
}

const hex = (b: Uint8Array | null) =>
  b === null ? "null" : Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

Deno.test({
  name: `loadRistretto255() gives libsodium's build where libsodium loads${SKIPPED}`,
  ignore: sodium === null,
  fn: async () => {
    assertEquals((await loadRistretto255()).name, "libsodium");
  },
});

Deno.test("sodiumRistretto255() is null without the library", () => {
  assertEquals(loadLibsodium(["/nonexistent/libsodium.so.23"]), null);
  assertEquals(sodiumRistretto255(null), null);
});

Deno.test({
  name: `libsodium's and @noble/curves' builds agree on derivation and products${SKIPPED}`,
  ignore: sodium === null,
  fn: () => {
    for (let i = 0; i < 300; i++) {
      const uniform = random(64);
      const g = sodium!.fromUniform(uniform);
      assertEquals(hex(g), hex(noble.fromUniform(uniform)));
      const y = scalar();
      const share = sodium!.multiply(y, g);
      assertEquals(hex(share), hex(noble.multiply(y, g)));
      assert(share !== null && sodium!.isElement(share) && noble.isElement(share));
    }
  },
});

Deno.test({
  name:
    `libsodium's build refuses what @noble/curves' refuses, bit 255 and lengths included${SKIPPED}`,
  ignore: sodium === null,
  fn: () => {
    const y = scalar();
    let valid = 0;
    for (let i = 0; i < 4000; i++) {
      const x = random(32);
      if (i % 2 === 0) x[31]! &= 0x7f; // half with bit 255 clear, so more of them decode
      if (i % 4 === 0) x[0]! &= 0xfe; // and even
      const element = noble.isElement(x);
      assertEquals(sodium!.isElement(x), element, hex(x));
      assertEquals(hex(sodium!.multiply(y, x)), hex(noble.multiply(y, x)), hex(x));
      if (element) valid++;
      // The same element with bit 255 set: libsodium 1.0.18 alone would take it.
      const alias = x.slice();
      alias[31]! |= 0x80;
      assertEquals(sodium!.isElement(alias), false, hex(alias));
      assertEquals(sodium!.multiply(y, alias), null, hex(alias));
    }
    assert(valid > 100, `only ${valid} random encodings decoded`);
    assertEquals(sodium!.isElement(new Uint8Array(32)), false, "the identity");
    assertEquals(sodium!.multiply(y, new Uint8Array(32)), null, "the identity");
    const g = sodium!.fromUniform(random(64));
    for (const length of [0, 31, 33]) {
      const x = new Uint8Array(length);
      x.set(g.subarray(0, Math.min(length, 32)));
      assertEquals(sodium!.isElement(x), false, `${length} bytes`);
      assertEquals(sodium!.multiply(y, x), null, `${length} bytes`);
    }
    assertThrows(() => sodium!.fromUniform(random(63)), RangeError);
    assertThrows(() => sodium!.multiply(random(31), g), RangeError);
  },
});

/**
 * A stand-in for libsodium 1.0.18 that computes with @noble/curves but decodes as that
 * version does (bit 255 ignored), and records the length of every buffer it is handed.
 */
function fakeLibsodium(seen: number[]): Libsodium {
  const decodeAsSodium = (p: Uint8Array) => {
    const x = p.slice(0, 32);
    x[31]! &= 0x7f;
    return x;
  };
  const le = (n: bigint) =>
    Uint8Array.from({ length: 32 }, (_, i) => Number((n >> BigInt(8 * i)) & 0xffn));
  return {
    sodium_init: () => 0,
    crypto_core_ristretto255_from_hash: (out: BufferSource, r: BufferSource) => {
      const [o, u] = [out as Uint8Array, r as Uint8Array];
      seen.push(o.length, u.length);
      o.set(noble.fromUniform(u.slice(0, 64)));
      return 0;
    },
    crypto_core_ristretto255_is_valid_point: (p: BufferSource) => {
      const x = p as Uint8Array;
      seen.push(x.length);
      const d = decodeAsSodium(x);
      return d.every((b) => b === 0) || noble.isElement(d) ? 1 : 0;
    },
    crypto_scalarmult_ristretto255: (q: BufferSource, n: BufferSource, p: BufferSource) => {
      const [o, y, x] = [q as Uint8Array, n as Uint8Array, p as Uint8Array];
      seen.push(o.length, y.length, x.length);
      let s = 0n;
      for (let i = 31; i >= 0; i--) s = (s << 8n) | BigInt(y[i]!);
      s &= (1n << 255n) - 1n; // libsodium clears the top bit
      s %= GROUP_ORDER;
      if (s === 0n) return -1;
      const product = noble.multiply(le(s), decodeAsSodium(x));
      if (product === null) return -1;
      o.set(product);
      return 0;
    },
  } as unknown as Libsodium;
}

Deno.test("sodiumRistretto255() hands libsodium only whole buffers and never a bit-255 alias", () => {
  const seen: number[] = [];
  const built = sodiumRistretto255(fakeLibsodium(seen));
  assert(built !== null, "the stand-in passes the known answers");
  const group = built!;
  const y = scalar();
  const g = group.fromUniform(random(64));
  for (let i = 0; i < 500; i++) {
    const x = i % 2 === 0 ? group.multiply(scalar(), g)! : random(32);
    const alias = x.slice();
    alias[31]! |= 0x80;
    assertEquals(group.isElement(alias), false, hex(alias));
    assertEquals(group.multiply(y, alias), null, hex(alias));
    assertEquals(hex(group.multiply(y, x)), hex(noble.multiply(y, x)), hex(x));
  }
  for (const length of [0, 31, 33, 64]) {
    assertEquals(group.isElement(new Uint8Array(length)), false);
    assertEquals(group.multiply(y, new Uint8Array(length)), null);
  }
  assertThrows(() => group.fromUniform(random(63)), RangeError);
  assertThrows(() => group.multiply(random(31), g), RangeError);
  assertThrows(() => group.multiply(new Uint8Array(32), g), RangeError, "group order");
  assertThrows(
    () => group.multiply(new Uint8Array(32).fill(0xff), g),
    RangeError,
    "group order",
  );
  assert(seen.every((n) => n === 32 || n === 64), `lengths handed to C: ${[...new Set(seen)]}`);
});

Deno.test("sodiumRistretto255() is null for a library that gives a wrong known answer", () => {
  const lib = fakeLibsodium([]);
  const wrong = {
    ...lib,
    crypto_scalarmult_ristretto255: (q: BufferSource, n: BufferSource, p: BufferSource) => {
      const r = lib.crypto_scalarmult_ristretto255(
        q as Uint8Array,
        n as Uint8Array,
        p as Uint8Array,
      );
      (q as Uint8Array)[0]! ^= 1;
      return r;
    },
  } as unknown as Libsodium;
  assertEquals(sodiumRistretto255(wrong), null);
});
