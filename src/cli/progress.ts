/**
 * Progress as people see it: the numbers of a transfer (bytes and files
 * done out of the totals, the rate, the time left, the current file), one
 * line of text for them, and the terminal area that redraws such lines in
 * place at the bottom while other messages scroll above.
 */
import { formatBytes } from "./format.ts";
import { writeText } from "./output.ts";

/** Redraws and `progress` objects: at most this often. */
export const PROGRESS_INTERVAL_MS = 100;

/**
 * The rate over the last few seconds. Resumed bytes never enter it: only
 * bytes that moved in this run (the `progress` events) are sampled.
 */
export class RateMeter {
  #samples: { t: number; bytes: number }[] = [];
  #first: { t: number; bytes: number } | null = null;
  /** The running total at the last reset: the rate counts only what moved since. */
  #base = 0;

  constructor(
    readonly windowMs = 5000,
    readonly now: () => number = () => performance.now(),
  ) {}

  /** Records that `bytes` (a running total) had moved by now. */
  sample(bytes: number): void {
    const t = this.now();
    this.#first ??= { t, bytes: this.#base };
    const last = this.#samples.at(-1);
    if (last && t - last.t < PROGRESS_INTERVAL_MS / 2) last.bytes = bytes;
    else this.#samples.push({ t, bytes });
    while (this.#samples.length > 2 && t - this.#samples[1]!.t >= this.windowMs) {
      this.#samples.shift();
    }
  }

  /** Bytes a second, or null before there is enough to tell. */
  rate(): number | null {
    const last = this.#samples.at(-1);
    const oldest = this.#samples[0];
    if (!last || !oldest || !this.#first) return null;
    const span = last.t - oldest.t;
    if (span >= 500) return Math.max(0, (last.bytes - oldest.bytes) / (span / 1000));
    // Early on: the average since the first byte.
    const since = this.now() - this.#first.t;
    return since >= 200 ? (last.bytes - this.#first.bytes) / (since / 1000) : null;
  }

  /**
   * Starts over from `bytes` (the running total now), forgetting the past:
   * after a pause (reconnecting), the rate is that of the new connection.
   */
  reset(bytes: number): void {
    this.#samples = [];
    this.#first = null;
    this.#base = bytes;
  }
}

/** A transfer's numbers at one moment. */
export interface ProgressState {
  /** Bytes done: sent in this run plus those resumed. */
  done: number;
  totalBytes: number | null;
  files: number;
  totalFiles: number | null;
  /** Bytes a second (this run's bytes only), null if not known yet. */
  rate: number | null;
  /** The file being transferred, already escaped for the terminal. */
  current: string | null;
}

/** Seconds left, or null when it cannot be told. */
export function etaSeconds(s: ProgressState): number | null {
  if (s.totalBytes === null || s.rate === null || s.rate <= 0) return null;
  return Math.max(0, (s.totalBytes - s.done) / s.rate);
}

/** `0:07`, `12:30`, `1:02:03`. */
export function formatDuration(seconds: number): string {
  const whole = Math.round(seconds);
  const h = Math.floor(whole / 3600);
  const m = Math.floor((whole % 3600) / 60);
  const s = whole % 60;
  const mm = h > 0 ? String(m).padStart(2, "0") : String(m);
  return `${h > 0 ? `${h}:` : ""}${mm}:${String(s).padStart(2, "0")}`;
}

export function formatRate(rate: number | null): string {
  return rate === null ? "- B/s" : `${formatBytes(Math.round(rate))}/s`;
}

/**
 * One progress line: `12.5 MB / 200 MB (6%)  files 3/120  25.0 MB/s  ETA 0:07  a.jpg`,
 * with `?` for totals not known yet, at most `width` columns wide (the file
 * name is shortened from the left to fit).
 */
export function progressLine(s: ProgressState, width: number, prefix = ""): string {
  const total = s.totalBytes === null ? "?" : formatBytes(s.totalBytes);
  const percent = s.totalBytes === null || s.totalBytes === 0
    ? ""
    : ` (${Math.min(100, Math.floor((s.done / s.totalBytes) * 100))}%)`;
  const eta = etaSeconds(s);
  const parts = [
    `${prefix}${formatBytes(s.done)} / ${total}${percent}`,
    `files ${s.files}/${s.totalFiles ?? "?"}`,
    formatRate(s.rate),
  ];
  if (eta !== null && eta < 100 * 3600) parts.push(`ETA ${formatDuration(eta)}`);
  const head = parts.join("  ");
  if (s.current === null) return fit(head, width);
  const room = width - displayWidth(head) - 2;
  if (room < 8) return fit(head, width);
  return `${head}  ${shortenLeft(s.current, room)}`;
}

/** Cuts `text` to `width` columns. */
export function fit(text: string, width: number): string {
  if (displayWidth(text) <= width) return text;
  let out = "";
  let used = 0;
  for (const c of text) {
    const w = charWidth(c.codePointAt(0)!);
    if (used + w > width - 1) break;
    out += c;
    used += w;
  }
  return `${out}…`;
}

/** Keeps the end of `text` (a path's most telling part) within `width` columns. */
export function shortenLeft(text: string, width: number): string {
  if (displayWidth(text) <= width) return text;
  const chars = [...text];
  let out = "";
  let used = 1;
  for (let i = chars.length - 1; i >= 0; i--) {
    const w = charWidth(chars[i]!.codePointAt(0)!);
    if (used + w > width) break;
    out = chars[i] + out;
    used += w;
  }
  return `…${out}`;
}

/** Columns a character takes in a terminal: 0 for combining marks, 2 for wide ones. */
export function charWidth(cp: number): number {
  if (
    (cp >= 0x300 && cp <= 0x36f) || (cp >= 0x200b && cp <= 0x200f) || (cp >= 0xfe00 && cp <= 0xfe0f)
  ) {
    return 0;
  }
  if (
    (cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0xa4cf) ||
    (cp >= 0xac00 && cp <= 0xd7a3) || (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x1f300 && cp <= 0x1f64f) ||
    (cp >= 0x1f900 && cp <= 0x1f9ff) || (cp >= 0x20000 && cp <= 0x3fffd)
  ) {
    return 2;
  }
  return 1;
}

export function displayWidth(text: string): number {
  let width = 0;
  for (const c of text) width += charWidth(c.codePointAt(0)!);
  return width;
}

/** The terminal's width in columns (80 if it cannot be told). */
export function terminalColumns(): number {
  try {
    const { columns } = Deno.consoleSize();
    return columns > 0 ? columns : 80;
  } catch {
    return 80;
  }
}

/**
 * Lines kept at the bottom of the terminal (on stdout) and redrawn in place;
 * messages printed through `print` appear above them. `clear` leaves the
 * cursor at the start of an empty line, so whatever comes next starts clean.
 */
export class LiveArea {
  #lines: string[] = [];
  #shown = 0;

  constructor(
    readonly write: (stream: "stdout" | "stderr", text: string) => void = writeText,
    readonly columns: () => number = terminalColumns,
  ) {}

  /** Replaces the lines and redraws them. */
  update(lines: string[]): void {
    this.#lines = lines;
    this.write("stdout", this.#erase() + this.#draw());
  }

  /** Prints `text` (a line) above the live lines. */
  print(stream: "stdout" | "stderr", text: string): void {
    if (this.#shown > 0) this.write("stdout", this.#erase());
    this.write(stream, text.endsWith("\n") ? text : `${text}\n`);
    if (this.#lines.length > 0) this.write("stdout", this.#draw());
  }

  /** Erases the live lines for good (until the next update). */
  clear(): void {
    this.#lines = [];
    if (this.#shown > 0) this.write("stdout", this.#erase());
  }

  #erase(): string {
    if (this.#shown === 0) return "";
    const up = this.#shown > 1 ? `\x1b[${this.#shown - 1}A` : "";
    this.#shown = 0;
    return `\r${up}\x1b[J`;
  }

  #draw(): string {
    // One column short of the width, so a line never wraps.
    const width = Math.max(10, this.columns() - 1);
    this.#shown = this.#lines.length;
    return this.#lines.map((line) => fit(line, width)).join("\n");
  }
}
