/**
 * The NDJSON of `--json` (docs/JSON.md): the object types `send` and `serve`
 * print, and a strict parser for their output.
 */
import { assert, assertEquals } from "@std/assert";

export type Json = Record<string, unknown> & { type: string };

export const SEND_TYPES = [
  "start",
  "connected",
  "file-start",
  "progress",
  "file-done",
  "text-done",
  "already",
  "unchanged",
  "skipped",
  "file-failed",
  "warning",
  "retry",
  "summary",
  "error",
];
export const SERVE_TYPES = [
  "start",
  "warning",
  "session-start",
  "file-start",
  "progress",
  "file-done",
  "already",
  "unchanged",
  "refused",
  "file-failed",
  "text",
  "ask",
  "answered",
  "summary",
  "stopped",
  "error",
];

/** Parses NDJSON strictly: every line one object with a known type, nothing else. */
export function parseNdjson(stdout: string, types: string[]): Json[] {
  assert(stdout.endsWith("\n"), "ends with a newline");
  return stdout.slice(0, -1).split("\n").map((line) => {
    const value = JSON.parse(line);
    assertEquals(typeof value, "object", line);
    assert(types.includes(value.type), `unknown type in ${line}`);
    return value as Json;
  });
}
