/**
 * `send --json`'s per-file lines (src/cli/output.ts `emitJsonSoon`): written together rather
 * than a write call each, yet in order with everything else and never lost at exit.
 */
import { assertEquals } from "@std/assert";
import { emitJson, emitJsonSoon, flushJson, writeText } from "../src/cli/output.ts";

/** Records what would be written to stdout and stderr, one entry per write call. */
function capture(): { writes: [string, string][]; [Symbol.dispose](): void } {
  const writes: [string, string][] = [];
  const decoder = new TextDecoder();
  const saved = [Deno.stdout.writeSync, Deno.stderr.writeSync] as const;
  Deno.stdout.writeSync = (p: Uint8Array) => (writes.push(["stdout", decoder.decode(p)]), p.length);
  Deno.stderr.writeSync = (p: Uint8Array) => (writes.push(["stderr", decoder.decode(p)]), p.length);
  return {
    writes,
    [Symbol.dispose]() {
      flushJson();
      [Deno.stdout.writeSync, Deno.stderr.writeSync] = saved;
    },
  };
}

Deno.test("per-file JSON lines are written in one call, before anything printed after them", () => {
  using out = capture();
  emitJsonSoon({ type: "file-start", path: "a" });
  emitJsonSoon({ type: "file-done", path: "a" });
  assertEquals(out.writes, [], "held");
  writeText("stderr", "warning\n");
  emitJson({ type: "summary" });
  assertEquals(out.writes, [
    ["stdout", '{"type":"file-start","path":"a"}\n{"type":"file-done","path":"a"}\n'],
    ["stderr", "warning\n"],
    ["stdout", '{"type":"summary"}\n'],
  ]);
});

Deno.test("held JSON lines are written within a moment, and at exit (unload)", async () => {
  using out = capture();
  emitJsonSoon({ type: "file-done", path: "a" });
  await new Promise((resolve) => setTimeout(resolve, 100));
  assertEquals(out.writes, [["stdout", '{"type":"file-done","path":"a"}\n']]);
  emitJsonSoon({ type: "file-done", path: "b" });
  globalThis.dispatchEvent(new Event("unload"));
  assertEquals(out.writes.length, 2);
  assertEquals(out.writes[1], ["stdout", '{"type":"file-done","path":"b"}\n']);
});

Deno.test("many held lines are written once enough are held, not all at the end", () => {
  using out = capture();
  for (let i = 0; i < 1000; i++) emitJsonSoon({ type: "file-done", path: `file-${i}` });
  const lines = out.writes.join("").split("\n").length;
  assert(out.writes.length > 0 && out.writes.length < 10, `${out.writes.length} writes`);
  assert(lines > 100, "most lines are out");
});

function assert(ok: boolean, message: string): void {
  if (!ok) throw new Error(message);
}
