import { assertEquals } from "@std/assert";
import { escapeName } from "../src/escape.ts";

Deno.test("escapeName() makes controls and every bidi control visible", () => {
  assertEquals(escapeName("a\x1b[2Jb"), "a\\u{1b}[2Jb");
  assertEquals(escapeName("x\u009by"), "x\\u{9b}y");
  assertEquals(escapeName("\u202egnp.exe"), "\\u{202e}gnp.exe");
  assertEquals(escapeName("\u2067a\u2069"), "\\u{2067}a\\u{2069}");
  // The marks reorder neutral characters around them (Trojan Source, CVE-2021-42574).
  assertEquals(escapeName("1\u200e2\u200f3\u061c4"), "1\\u{200e}2\\u{200f}3\\u{61c}4");
  assertEquals(escapeName("line\u2028two"), "line\\u{2028}two");
});

Deno.test("escapeName() leaves ordinary text as it is", () => {
  for (const name of ["report.pdf", "фото/Ünïcödé 🚀.jpg", "שלום.txt", "a (1).tar.gz"]) {
    assertEquals(escapeName(name), name);
  }
});
