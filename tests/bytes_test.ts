/**
 * Byte arrays (src/protocol/bytes.ts): the same results as @noble/hashes'
 * and @noble/curves' helpers they stand in for (that a send then loads no
 * npm package is tests/startup_modules_test.ts's).
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import {
  bytesToHex as nobleHex,
  concatBytes as nobleConcat,
  hexToBytes as nobleFromHex,
  utf8ToBytes as nobleUtf8,
} from "@noble/hashes/utils.js";
import { equalBytes as nobleEqual } from "@noble/curves/utils.js";
import {
  bytesToHex,
  concatBytes,
  equalBytes,
  hexToBytes,
  utf8ToBytes,
} from "../src/protocol/bytes.ts";
import { randomBytes } from "./_harness.ts";

Deno.test("bytesToHex(), hexToBytes(), concatBytes() and utf8ToBytes() give what @noble's do", () => {
  for (const n of [0, 1, 15, 16, 255, 256, 1000]) {
    const data = randomBytes(n);
    assertEquals(bytesToHex(data), nobleHex(data));
    assertEquals(hexToBytes(nobleHex(data)), data);
    assertEquals(hexToBytes(nobleHex(data).toUpperCase()), data);
    assertEquals(
      concatBytes(data, randomBytes(0), data),
      nobleConcat(data, new Uint8Array(0), data),
    );
  }
  assertEquals(concatBytes(), new Uint8Array(0));
  for (const text of ["", "abc", "é ☃ 𝄞", "\u0000\n"]) {
    assertEquals(utf8ToBytes(text), nobleUtf8(text));
  }
});

Deno.test("hexToBytes() refuses an odd length and anything but hex digits, as @noble's does", () => {
  for (const bad of ["a", "abc", "0g", "zz", " 0", "0x00", "+1"]) {
    assertThrows(() => hexToBytes(bad));
    assertThrows(() => nobleFromHex(bad));
  }
});

Deno.test("equalBytes() tells equal arrays from unequal ones, as @noble's does", () => {
  const a = randomBytes(32);
  const cases: [Uint8Array, Uint8Array][] = [
    [a, a.slice()],
    [a, a.subarray(0, 31)],
    [new Uint8Array(0), new Uint8Array(0)],
  ];
  for (let i = 0; i < 32; i += 7) {
    const b = a.slice();
    b[i]! ^= 1 << (i % 8);
    cases.push([a, b]);
  }
  for (const [x, y] of cases) assertEquals(equalBytes(x, y), nobleEqual(x, y));
  assert(equalBytes(a, a.slice()));
});
