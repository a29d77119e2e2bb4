import { assert, assertEquals } from "@std/assert";
import { checkName, type NameRules, STAGING_DIR_NAME } from "../src/server/safe_path.ts";

const LINUX: NameRules = { windows: false };
const WINDOWS: NameRules = { windows: true };
const ALL_RECEIVERS = [LINUX, WINDOWS];

/** Asserts that every receiver refuses each name with the given reason. */
function assertRefusedEverywhere(cases: [name: unknown, reason: string][]) {
  for (const rules of ALL_RECEIVERS) {
    for (const [name, reason] of cases) {
      assertEquals(
        checkName(name, rules),
        { ok: false, reason },
        `${JSON.stringify(name)} (windows: ${rules.windows})`,
      );
    }
  }
}

/** Asserts that the receiver accepts the name and splits it into `parts`. */
function assertAccepted(name: string, parts: string[], rules: NameRules) {
  assertEquals(
    checkName(name, rules),
    { ok: true, parts },
    `${JSON.stringify(name)} (windows: ${rules.windows})`,
  );
}

/** Asserts that every receiver accepts each name as a single component. */
function assertAcceptedEverywhere(names: string[]) {
  for (const rules of ALL_RECEIVERS) {
    for (const name of names) assertAccepted(name, name.split("/"), rules);
  }
}

Deno.test("checkName() accepts ordinary names and returns their components", () => {
  const cases: [string, string[]][] = [
    ["a.txt", ["a.txt"]],
    ["photos/2024/IMG 0001.jpg", ["photos", "2024", "IMG 0001.jpg"]],
    [".hidden", [".hidden"]],
    ["a/.b/c", ["a", ".b", "c"]],
    ["日本語/ファイル.txt", ["日本語", "ファイル.txt"]],
    ["émoji 🎉.txt", ["émoji 🎉.txt"]],
    ["a..b", ["a..b"]],
    ["...x", ["...x"]],
    [" x", [" x"]],
    ["dir/ leading space", ["dir", " leading space"]],
    ["no-break\u00a0space~", ["no-break\u00a0space~"]],
  ];
  for (const rules of ALL_RECEIVERS) {
    for (const [name, parts] of cases) assertAccepted(name, parts, rules);
  }
});

Deno.test("checkName() refuses values that are not strings", () => {
  assertRefusedEverywhere([
    [null, "not a string"],
    [undefined, "not a string"],
    [42, "not a string"],
    [0, "not a string"],
    [true, "not a string"],
    [{}, "not a string"],
    [[], "not a string"],
    [["a.txt"], "not a string"],
    [{ name: "a.txt" }, "not a string"],
  ]);
});

Deno.test("checkName() refuses the empty name", () => {
  assertRefusedEverywhere([["", "empty name"]]);
});

Deno.test("checkName() refuses lone UTF-16 surrogates", () => {
  assertRefusedEverywhere([
    ["\ud800", "not valid Unicode"],
    ["a\udc00b", "not valid Unicode"],
    ["dir/x\ud83d", "not valid Unicode"],
    ["\ude00\ud83d.txt", "not valid Unicode"],
  ]);
});

Deno.test("checkName() refuses C0, DEL and C1 control characters", () => {
  assertRefusedEverywhere([
    ["\0", "contains a control character"],
    ["a\0b", "contains a control character"],
    ["a.txt\0.jpg", "contains a control character"],
    ["a\x01", "contains a control character"],
    ["line\nbreak", "contains a control character"],
    ["dir/fi\rle", "contains a control character"],
    ["tab\there", "contains a control character"],
    ["\x1b[31mred", "contains a control character"],
    ["\x1f", "contains a control character"],
    ["del\x7f", "contains a control character"],
    ["c1\x80", "contains a control character"],
    ["c1\x9f/x", "contains a control character"],
  ]);
});

Deno.test("checkName() never echoes control characters in its reasons", () => {
  const names = ["con\x01", "a\0/..", "\x1b[2J/\x07", "..\\\x9b", "/\x7f", "x\n."];
  for (const rules of ALL_RECEIVERS) {
    for (const name of names) {
      const result = checkName(name, rules);
      assert(!result.ok, JSON.stringify(name));
      const reason = result.ok ? "" : result.reason;
      const controls = [...reason].filter((ch) => {
        const c = ch.codePointAt(0)!;
        return c <= 0x1f || (c >= 0x7f && c <= 0x9f);
      });
      assertEquals(controls, [], JSON.stringify(reason));
    }
  }
});

Deno.test("checkName() refuses backslashes anywhere", () => {
  assertRefusedEverywhere([
    ["a\\b", "contains a backslash"],
    ["..\\x", "contains a backslash"],
    ["C:\\x", "contains a backslash"],
    ["\\\\server\\share", "contains a backslash"],
    ["\\x", "contains a backslash"],
    ["dir/name\\", "contains a backslash"],
  ]);
});

Deno.test("checkName() refuses absolute paths", () => {
  assertRefusedEverywhere([
    ["/", "absolute path"],
    ["/etc/passwd", "absolute path"],
    ["/a", "absolute path"],
    ["//server/share", "absolute path"],
  ]);
});

Deno.test("checkName() refuses empty components", () => {
  assertRefusedEverywhere([
    ["a//b", "empty component"],
    ["a/", "empty component"],
    ["a/b/", "empty component"],
    ["a///b", "empty component"],
  ]);
});

Deno.test("checkName() refuses '.' components", () => {
  assertRefusedEverywhere([
    [".", "contains a '.' component"],
    ["./a", "contains a '.' component"],
    ["a/.", "contains a '.' component"],
    ["a/./b", "contains a '.' component"],
  ]);
});

Deno.test("checkName() refuses '..' components", () => {
  assertRefusedEverywhere([
    ["..", "contains '..'"],
    ["../x", "contains '..'"],
    ["a/..", "contains '..'"],
    ["a/../b", "contains '..'"],
    ["a/b/../../../etc/passwd", "contains '..'"],
  ]);
});

Deno.test("checkName() refuses a drive letter in the first component", () => {
  assertRefusedEverywhere([
    ["C:", "drive letter"],
    ["c:", "drive letter"],
    ["c:foo", "drive letter"],
    ["Z:/x", "drive letter"],
    ["a:b/c", "drive letter"],
  ]);
});

Deno.test("checkName() accepts colons elsewhere on a non-Windows receiver", () => {
  for (const name of ["a/c:foo", "1:x", "ab:c", ":x"]) {
    assertAccepted(name, name.split("/"), LINUX);
  }
});

Deno.test("checkName() refuses Windows device names in any component", () => {
  assertRefusedEverywhere([
    ["con", "reserved name 'CON'"],
    ["CON", "reserved name 'CON'"],
    ["Con.txt", "reserved name 'CON'"],
    ["PRN", "reserved name 'PRN'"],
    ["aux .txt", "reserved name 'AUX'"],
    ["AUX  .tar.gz", "reserved name 'AUX'"],
    ["NUL.tar.gz", "reserved name 'NUL'"],
    ["con..txt", "reserved name 'CON'"],
    ["com0", "reserved name 'COM0'"],
    ["a/b/com1.log", "reserved name 'COM1'"],
    ["COM9", "reserved name 'COM9'"],
    ["lpt0", "reserved name 'LPT0'"],
    ["x/LPT9.x/y", "reserved name 'LPT9'"],
    ["COM¹", "reserved name 'COM¹'"],
    ["com².txt", "reserved name 'COM²'"],
    ["lpt³.txt", "reserved name 'LPT³'"],
    ["conin$", "reserved name 'CONIN$'"],
    ["CONOUT$.log", "reserved name 'CONOUT$'"],
  ]);
});

Deno.test("checkName() accepts names that only resemble Windows device names", () => {
  assertAcceptedEverywhere([
    "console",
    "nul1",
    "con_x.txt",
    "CONX",
    "COM10",
    "com⁴",
    "lpt",
    ".con",
    "x.con",
    "conin",
    "a/auxiliary/prn-file",
  ]);
});

Deno.test("checkName() refuses components ending in a dot or a space", () => {
  assertRefusedEverywhere([
    ["a.", "trailing dot or space"],
    ["a ", "trailing dot or space"],
    ["a.txt.", "trailing dot or space"],
    ["a. ", "trailing dot or space"],
    ["...", "trailing dot or space"],
    ["dir./x", "trailing dot or space"],
    ["x/y ", "trailing dot or space"],
  ]);
});

Deno.test("checkName() limits components to 255 bytes, not characters", () => {
  assertAcceptedEverywhere([
    "a".repeat(255),
    "é".repeat(127) + "a", // 255 bytes
    "日".repeat(85), // 255 bytes
    "🎉".repeat(63), // 252 bytes
    "x/" + "a".repeat(255),
  ]);
  assertRefusedEverywhere([
    ["a".repeat(256), "component longer than 255 bytes"],
    ["é".repeat(128), "component longer than 255 bytes"], // 128 characters
    ["日".repeat(86), "component longer than 255 bytes"], // 86 characters
    ["🎉".repeat(64), "component longer than 255 bytes"], // 64 code points
    ["x/" + "a".repeat(256) + "/y", "component longer than 255 bytes"],
  ]);
});

Deno.test("checkName() limits paths to 4096 bytes by default", () => {
  const parts = Array.from({ length: 17 }, () => "a".repeat(240));
  const longest = parts.join("/"); // 17 * 240 + 16 = 4096 bytes
  assertEquals(longest.length, 4096);
  assertAcceptedEverywhere([longest]);
  const multiByte = "é" + longest.slice(1); // 4096 characters, 4097 bytes
  assertEquals(multiByte.length, 4096);
  assertRefusedEverywhere([
    [longest + "a", "path longer than 4096 bytes"],
    [multiByte, "path longer than 4096 bytes"],
  ]);
});

Deno.test("checkName() honours a maxPathBytes override", () => {
  for (const windows of [false, true]) {
    const rules: NameRules = { windows, maxPathBytes: 10 };
    assertAccepted("abcdefghij", ["abcdefghij"], rules);
    assertAccepted("ab/cd/efgh", ["ab", "cd", "efgh"], rules);
    assertAccepted("ééééé", ["ééééé"], rules);
    for (const name of ["abcdefghijk", "ab/cd/efghi", "éééééé"]) {
      assertEquals(checkName(name, rules), { ok: false, reason: "path longer than 10 bytes" });
    }
  }
});

Deno.test("checkName() limits paths to 128 levels by default", () => {
  const deepest = Array(128).fill("a").join("/");
  assertAcceptedEverywhere([deepest]);
  assertRefusedEverywhere([[deepest + "/a", "path deeper than 128 levels"]]);
});

Deno.test("checkName() honours a maxDepth override", () => {
  for (const windows of [false, true]) {
    assertAccepted("a/b", ["a", "b"], { windows, maxDepth: 2 });
    assertEquals(checkName("a/b/c", { windows, maxDepth: 2 }), {
      ok: false,
      reason: "path deeper than 2 levels",
    });
    assertAccepted("a", ["a"], { windows, maxDepth: 1 });
    assertEquals(checkName("a/b", { windows, maxDepth: 1 }), {
      ok: false,
      reason: "path deeper than 1 levels",
    });
  }
});

Deno.test("checkName() refuses the staging folder as first component", () => {
  assertEquals(STAGING_DIR_NAME, ".ferry");
  assertRefusedEverywhere([
    [".ferry", "reserved for ferry's staging folder"],
    [".FERRY", "reserved for ferry's staging folder"],
    [".Ferry/x", "reserved for ferry's staging folder"],
    [".ferry/a/b.txt", "reserved for ferry's staging folder"],
  ]);
});

Deno.test("checkName() accepts .ferry below the first component and look-alikes", () => {
  assertAcceptedEverywhere(["a/.ferry", "a/.FERRY/b", ".ferry2", ".ferryx/a", "ferry", "x.ferry"]);
});

Deno.test('checkName() refuses < > : " | ? * on a Windows receiver', () => {
  const cases: [string, string][] = [
    ["a<b", "<"],
    ["a>b", ">"],
    ["dir/a:b", ":"],
    ['say "hi"', '"'],
    ["a|b", "|"],
    ["why?", "?"],
    ["x/*.txt", "*"],
    ["notes: draft?.txt", ":"],
  ];
  for (const [name, ch] of cases) {
    assertEquals(checkName(name, WINDOWS), {
      ok: false,
      reason: `contains '${ch}', not allowed on windows`,
    });
  }
});

Deno.test('checkName() accepts < > : " | ? * on a non-Windows receiver', () => {
  const names = [
    "a<b",
    "a>b",
    "dir/a:b",
    'say "hi"',
    "a|b",
    "why?",
    "x/*.txt",
    "notes: draft?.txt",
  ];
  for (const name of names) assertAccepted(name, name.split("/"), LINUX);
});
