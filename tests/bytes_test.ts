/**
 * Byte arrays (src/protocol/bytes.ts): the same results as @noble/hashes'
 * and @noble/curves' helpers they stand in for, and a send that loads no npm
 * package where the system's libraries do the cryptography.
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

Deno.test({
  name: "send loads no npm package: its modules import none but where a library is missing",
  async fn() {
    const { stdout, success } = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", new URL("../src/subcommands/send.ts", import.meta.url).href],
      stdout: "piped",
      stderr: "null",
    }).output();
    assert(success, "deno info");
    const info = JSON.parse(new TextDecoder().decode(stdout)) as {
      roots: string[];
      modules: {
        specifier: string;
        dependencies?: { isDynamic?: boolean; code?: { specifier?: string } }[];
      }[];
    };
    const bySpecifier = new Map(info.modules.map((m) => [m.specifier, m]));
    const seen = new Set<string>();
    const todo = [...info.roots];
    while (todo.length > 0) {
      const at = todo.pop()!;
      if (seen.has(at)) continue;
      seen.add(at);
      for (const dep of bySpecifier.get(at)?.dependencies ?? []) {
        // Imported when run (a fallback where a library is missing): not loaded with send.
        if (dep.isDynamic) continue;
        if (dep.code?.specifier !== undefined) todo.push(dep.code.specifier);
      }
    }
    assert(seen.size > 20, `${seen.size} modules`);
    assertEquals([...seen].filter((s) => !s.startsWith("file:")), []);
  },
});
