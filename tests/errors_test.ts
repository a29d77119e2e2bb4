/**
 * Errors are data, not text (src/errors.ts): every `--json` code is thrown
 * somewhere with that code, docs/JSON.md gives each code the exit code ferry
 * uses, and no source decides anything by an error's wording.
 */
import { assert, assertEquals } from "@std/assert";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { ERROR_CODES, exitCodeOf, type FailureCode, isErrorCode } from "../src/errors.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** main.ts and every TypeScript file under src/, as [path from the root, text]. */
async function sources(): Promise<[string, string][]> {
  const out: [string, string][] = [["main.ts", await Deno.readTextFile(join(ROOT, "main.ts"))]];
  const visit = async (dir: string) => {
    for await (const entry of Deno.readDir(dir)) {
      const path = join(dir, entry.name);
      if (entry.isDirectory) await visit(path);
      else if (entry.isFile && entry.name.endsWith(".ts")) {
        out.push([relative(ROOT, path), await Deno.readTextFile(path)]);
      }
    }
  };
  await visit(join(ROOT, "src"));
  return out.sort(([a], [b]) => a.localeCompare(b));
}

/** The codes `text` throws ferry's errors with: the first argument of each, or UsageError's. */
function thrownCodes(text: string): string[] {
  const codes = [...text.matchAll(
    /new (?:FerryError|ConnectionLost|ConnectFailed|DiscoveryError)\(\s*"([a-z-]+)"/g,
  )].map((m) => m[1]!); // the group is not optional
  if (/new UsageError\(/.test(text)) codes.push("usage");
  return codes;
}

Deno.test("every --json code but internal is thrown somewhere in src/ with that code", async () => {
  const thrown = new Map<string, string[]>();
  for (const [path, text] of await sources()) {
    for (const code of thrownCodes(text)) thrown.set(code, [...thrown.get(code) ?? [], path]);
  }
  for (const code of thrown.keys()) assert(isErrorCode(code), `'${code}' is not in ERROR_CODES`);
  // `internal` is what errorCode() says of anything that is not ferry's error: never thrown.
  assertEquals(thrown.has("internal"), false);
  const never = Object.keys(ERROR_CODES).filter((c) => c !== "internal" && !thrown.has(c));
  assertEquals(never, [], `codes no source throws: ${never.join(", ")}`);
});

Deno.test("docs/JSON.md gives each error code the exit code ferry exits with", async () => {
  const doc = await Deno.readTextFile(join(ROOT, "docs", "JSON.md"));
  const errors = doc.slice(doc.indexOf("## Errors"));
  const rows = [...errors.matchAll(/^\| `([a-z-]+)` +\| (\d+) +\|/gm)];
  assert(rows.length >= 15, `only ${rows.length} rows found in JSON.md's table of errors`);
  for (const [, code, exit] of rows) {
    assert(isErrorCode(code!), `JSON.md lists '${code}', which is not in ERROR_CODES`);
    if (code === "internal") assertEquals(Number(exit), 1);
    else assertEquals(exitCodeOf(code as FailureCode), Number(exit), code);
  }
});

/**
 * Where a source reads an error's wording to decide something: a regular
 * expression or a string search over a `.message` (or `String(err)`), or a
 * comparison with one.
 */
const READS_TEXT = [
  /\.(?:test|exec|match|matchAll|search|includes|startsWith|endsWith|indexOf)\(\s*(?:[\w$#]+(?:\?\.|\.))+message\b/g,
  /\.message\s*\??\.\s*(?:test|exec|match|matchAll|search|includes|startsWith|endsWith|indexOf|lastIndexOf)\(/g,
  /\.message\s*[!=]==?|[!=]==?\s*(?:[\w$#]+\??\.)+message\b/g,
  /\.(?:test|exec|match|matchAll|search|includes|startsWith|endsWith|indexOf)\(\s*String\(\s*(?:err|e|error|cause)\s*\)/g,
  /String\(\s*(?:err|e|error|cause)\s*\)\s*\.\s*(?:match|matchAll|search|includes|startsWith|endsWith|indexOf)\(/g,
];

/** Each place in `text` that reads an error's wording, as [line number, whether it says why]. */
function textReads(text: string): [number, boolean][] {
  const lines = text.split("\n");
  const found: [number, boolean][] = [];
  for (const pattern of READS_TEXT) {
    for (const match of text.matchAll(pattern)) {
      const line = text.slice(0, match.index).split("\n").length;
      // A reason, `// error-text: ...`, on the line or one of the two before.
      const why = lines.slice(Math.max(0, line - 3), line).some((l) => l.includes("error-text:"));
      found.push([line, why]);
    }
  }
  return found;
}

/**
 * The only places allowed to read an error's text, each for an error Deno
 * gives neither a class nor a code: a failed name lookup (its words), and
 * EDQUOT and EFBIG (the errno number in "(os error N)").
 */
const TEXT_READS_ALLOWED = ["src/os_errors.ts", "src/transport/tcp.ts"];

Deno.test("no source decides by an error's wording (but where Deno says nothing else)", async () => {
  const reading: string[] = [];
  for (const [path, text] of await sources()) {
    for (const [line, why] of textReads(text)) {
      assert(why, `${path}:${line} reads an error's text; decide by its class or code instead`);
      reading.push(path);
    }
  }
  assertEquals([...new Set(reading)], TEXT_READS_ALLOWED);
  assertEquals(reading.length, TEXT_READS_ALLOWED.length);
});

Deno.test("the wording detector finds text matching and lets printing be", () => {
  const reads = [
    `if (/could not connect/.test(err.message)) retry();`,
    `return BY_MESSAGE.find(([shape]) => shape.test(err.message));`,
    `if (err instanceof Error && /read-only/i.test(\n  err.message,\n)) {`,
    `if (e.message.includes("no space left")) full();`,
    `if (error?.message?.startsWith("port ")) taken();`,
    `if (err.message === "wrong code") again();`,
    `if ("busy" === cause.message) later();`,
    `if (/ENOSPC/.test(String(err))) full();`,
    `if (String(err).includes("EROFS")) readOnly();`,
  ];
  for (const code of reads) assertEquals(textReads(code).length, 1, code);
  assertEquals(textReads(`// error-text: Deno gives no code.\n/x/.test(err.message);`), [[
    2,
    true,
  ]]);
  const prints = [
    'throw new FerryError("protocol", `protocol error with ${where}: ${err.message}`);',
    'return { error: err.message, cause: "wrong-code" };',
    "const message = authenticatedRefusal(where, e.code, escapeName(e.message));",
    'emitJson({ type: "warning", message: event.message });',
    'if (err.code === "busy") return;',
  ];
  for (const code of prints) assertEquals(textReads(code), [], code);
});
