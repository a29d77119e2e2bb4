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

/**
 * Writes all of `text` to `stream`, synchronously (so it interleaves in order with redraws),
 * after the lines `emitJsonSoon` holds.
 */
export function writeText(stream: "stdout" | "stderr", text: string): void {
  if (held !== "") flushJson();
  writeNow(stream, text);
}

function writeNow(stream: "stdout" | "stderr", text: string): void {
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

/**
 * Lines of `emitJsonSoon` not written yet: a line per file would be a write call per file, so
 * they are written together, at most JSON_HOLD_MS later (or once JSON_HOLD_BYTES are held), and
 * always before anything else is written and before the process exits.
 */
let held = "";
let holdTimer: ReturnType<typeof setTimeout> | null = null;
/** A write of held lines that failed in the timer: thrown to the next caller instead. */
let holdFailure: { err: unknown } | null = null;
let unloadHooked = false;
const JSON_HOLD_MS = 20;
const JSON_HOLD_BYTES = 16 * 1024;

/**
 * Prints one JSON object on stdout within JSON_HOLD_MS, in order with everything else printed:
 * for the lines that come per file (`file-start`, `file-done`, ...).
 */
export function emitJsonSoon(value: Record<string, unknown> & { type: string }): void {
  if (holdFailure !== null) throw holdFailure.err;
  held += jsonLine(value);
  if (held.length >= JSON_HOLD_BYTES) {
    flushJson();
    return;
  }
  if (holdTimer !== null) return;
  if (!unloadHooked) {
    unloadHooked = true;
    globalThis.addEventListener("unload", () => {
      try {
        flushJson();
      } catch { /* stdout is gone: nothing to tell */ }
    });
  }
  const timer = setTimeout(() => {
    holdTimer = null;
    try {
      flushJson();
    } catch (err) {
      holdFailure = { err };
    }
  }, JSON_HOLD_MS);
  Deno.unrefTimer(timer);
  holdTimer = timer;
}

/** Writes the lines `emitJsonSoon` holds, now. */
export function flushJson(): void {
  if (holdTimer !== null) {
    clearTimeout(holdTimer);
    holdTimer = null;
  }
  if (held === "") return;
  const text = held;
  held = "";
  writeNow("stdout", text);
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
