/**
 * Where output goes, and in which form:
 *
 * - `json`: one JSON object per line on stdout, nothing else there
 *   (docs/JSON.md);
 * - `live`: stdout is a terminal (and neither NO_COLOR nor --quiet): progress
 *   lines redrawn in place at the bottom, messages printed above them;
 * - `plain`: lines only, never redrawn, no colours (a pipe, a file, a log).
 */
import { DiscoveryError, ERROR_CODES, FerryError } from "../errors.ts";
import { errorCode } from "./error_codes.ts";

export type Mode = "json" | "live" | "plain";

export interface ModeFlags {
  json?: boolean | undefined;
  quiet?: boolean | undefined;
}

/** Whether stdout is a terminal and colours and redraws are welcome. */
export function isLiveTerminal(): boolean {
  let terminal = false;
  try {
    terminal = Deno.stdout.isTerminal();
  } catch { /* not a terminal */ }
  return terminal && !Deno.noColor;
}

export function chooseMode(flags: ModeFlags): Mode {
  if (flags.json) return "json";
  if (flags.quiet) return "plain";
  return isLiveTerminal() ? "live" : "plain";
}

/** Whether a command line asks for `--json` (before any `--`), even one that fails to parse. */
export function wantsJson(args: string[]): boolean {
  for (const arg of args) {
    if (arg === "--") return false;
    if (arg === "--json") return true;
  }
  return false;
}

const encoder = new TextEncoder();

/** Writes all of `text` to `stream`, synchronously (so it interleaves in order with redraws). */
export function writeText(stream: "stdout" | "stderr", text: string): void {
  const target = stream === "stdout" ? Deno.stdout : Deno.stderr;
  const bytes = encoder.encode(text);
  let done = 0;
  while (done < bytes.length) done += target.writeSync(bytes.subarray(done));
}

// C1 controls, line/paragraph separators and bidi controls survive JSON.stringify; escape them too.
const JSON_UNSAFE = /[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** One NDJSON line: `value` as JSON, with every control or bidi character \u-escaped. */
export function jsonLine(value: unknown): string {
  return JSON.stringify(value).replace(
    JSON_UNSAFE,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  ) + "\n";
}

/** Prints one JSON object on stdout. */
export function emitJson(value: Record<string, unknown> & { type: string }): void {
  writeText("stdout", jsonLine(value));
}

/** The `error` object for an error that ends a command. */
export function errorObject(err: unknown): Record<string, unknown> & { type: "error" } {
  const code = errorCode(err);
  const out: Record<string, unknown> & { type: "error" } = {
    type: "error",
    code,
    message: err instanceof Error && code !== "internal"
      ? err.message
      : `${ERROR_CODES.internal}: ${err instanceof Error ? err.message : String(err)}`,
  };
  if (err instanceof FerryError && err.hint !== undefined) out.hint = err.hint;
  if (err instanceof DiscoveryError && err.servers.length > 0) out.servers = err.servers;
  return out;
}
