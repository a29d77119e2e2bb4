/**
 * What `ferry send` shows: in `plain` mode one line per file, errors on
 * stderr and a summary (the stable format scripts and tests read); in
 * `live` mode a progress line redrawn at the bottom of the terminal, with
 * problems (and renamed files) printed above it; in `json` mode NDJSON
 * objects on stdout (docs/JSON.md).
 */
import type { SendEvent, SendResult } from "../client/send_session.ts";
import type { Totals } from "../client/walk.ts";
import { escapeName } from "../escape.ts";
import { formatBytes, formatSeconds, plural, syncCounts } from "./format.ts";
import { every, type Timer } from "../transport/timer.ts";
import { emitJson, emitJsonSoon, type Mode, writeText } from "./output.ts";
import {
  etaSeconds,
  LiveArea,
  PROGRESS_INTERVAL_MS,
  progressLine,
  type ProgressState,
  RateMeter,
} from "./progress.ts";

/** What the `start` object and the first line say. */
export interface SendStart {
  /** Where the files go, `HOST:PORT`. */
  to: string;
  /** The server found by discovery, if --to was not given. */
  found?: { name: string; addresses: string[]; port: number } | null;
  /** The sources as given on the command line. */
  sources: string[];
  /** Reconnections allowed (--retries), for "attempt N of M" while reconnecting. */
  retries?: number;
}

export class SendReporter {
  #live: LiveArea | null;
  #timer: Timer | null = null;
  #meter = new RateMeter();
  /** Bytes sent in this run (no resumed bytes). */
  #sent = 0;
  /** Bytes the receiver already had, for the files started so far. */
  #resumed = 0;
  /** Bytes counted as done for the files started on this connection and not finished yet. */
  #open = new Map<string, number>();
  /** Bytes of files a dropped connection left unfinished: done again once resent or resumed. */
  #dropped = 0;
  #files = 0;
  #totals: Totals | null = null;
  #current: string | null = null;
  /** What the last `progress` object said, to send one only when something moved. */
  #lastJson = "";
  #closed = false;
  /** Where to, until connected (the live line says it is connecting). */
  #to = "";
  #connected = false;
  /** Connections tried at most (1 + --retries), if known. */
  #attempts: number | null = null;
  /** The connection being tried after one dropped, until it is made ("retry" to "connected"). */
  #reconnecting: number | null = null;

  constructor(readonly mode: Mode, readonly quiet: boolean) {
    this.#live = mode === "live" ? new LiveArea() : null;
  }

  /** Whether anything shows totals, so a pre-walk to count them is worth its I/O. */
  get wantsTotals(): boolean {
    return this.mode !== "plain";
  }

  start(info: SendStart): void {
    this.#to = info.to;
    this.#attempts = info.retries === undefined ? null : info.retries + 1;
    if (this.mode === "json") {
      emitJson({
        type: "start",
        command: "send",
        to: info.to,
        server: info.found ?? null,
        sources: info.sources,
      });
    } else if (info.found && !this.quiet) {
      this.#print(
        "stdout",
        `ferry: found ${escapeName(info.found.name)} at ${info.to}`,
      );
    }
    if (this.mode !== "plain") {
      this.#timer = every(PROGRESS_INTERVAL_MS, () => this.#tick());
    }
  }

  /** The pre-walk's count: from now on the totals are known (null: it did not finish). */
  totals(totals: Totals | null): void {
    this.#totals = totals;
  }

  event(event: SendEvent): void {
    switch (event.type) {
      case "connected":
        this.#connected = true;
        if (this.#reconnecting !== null) {
          // The pause does not count in the rate: it starts over with the new connection.
          this.#reconnecting = null;
          this.#meter.reset(this.#sent);
          for (const bytes of this.#open.values()) this.#dropped += bytes;
          this.#open.clear();
        }
        if (this.mode === "json") {
          emitJson({
            type: "connected",
            to: event.to,
            server: event.server,
            attempt: event.attempt,
            cipher: event.cipher,
            digest: event.digest,
          });
        }
        return;
      case "file-start":
        this.#current = event.path;
        this.#resumed += event.resumed;
        this.#count(event.path, event.resumed);
        if (this.mode === "json") {
          emitJsonSoon({
            type: "file-start",
            path: event.path,
            size: event.size,
            resumed: event.resumed,
          });
        }
        return;
      case "progress":
        this.#sent += event.bytes;
        if (this.#current !== null) this.#count(this.#current, event.bytes);
        return;
      case "already":
        // Counted as done (not in the rate): the receiver kept it from an interrupted run.
        this.#files++;
        this.#resumed += event.bytes;
        if (this.mode === "json") {
          emitJsonSoon({ type: "already", path: event.path, bytes: event.bytes });
        }
        return;
      case "unchanged":
        // Counted as done (not in the rate): the receiver's copy is the same.
        this.#files++;
        this.#resumed += event.bytes;
        if (this.mode === "json") {
          emitJsonSoon({ type: "unchanged", path: event.path, bytes: event.bytes });
        }
        return;
      case "file-done":
        this.#files++;
        this.#open.delete(event.path);
        if (this.mode === "json") {
          emitJsonSoon({
            type: "file-done",
            path: event.path,
            name: event.name,
            bytes: event.bytes,
            resumed: event.resumed,
            replaced: event.replaced,
            ...(event.sha256 === undefined ? {} : { sha256: event.sha256 }),
          });
          return;
        }
        if (this.quiet) return;
        if (event.name !== event.path) {
          this.#print(
            "stdout",
            `sent ${escapeName(event.path)} as ${escapeName(event.name)} (${
              formatBytes(event.bytes)
            })`,
          );
        } else if (this.mode === "plain") {
          // On a terminal the progress line shows the file; only renames get a line of their own.
          this.#print("stdout", `sent ${escapeName(event.path)} (${formatBytes(event.bytes)})`);
        }
        return;
      case "text-done":
        if (this.mode === "json") emitJson({ type: "text-done", bytes: event.bytes });
        return;
      case "skipped":
        if (this.mode === "json") {
          emitJsonSoon({ type: "skipped", path: event.path, reason: event.reason });
        } else {
          this.#print(
            "stderr",
            `ferry: skipped ${escapeName(event.path)}: ${escapeName(event.reason)}`,
          );
        }
        return;
      case "warning":
        if (this.mode === "json") emitJson({ type: "warning", message: event.message });
        else this.#print("stderr", `ferry: ${escapeName(event.message)}`);
        return;
      case "retry":
        this.#reconnecting = event.attempt + 1;
        if (this.mode === "json") {
          emitJson({
            type: "retry",
            attempt: event.attempt,
            delaySeconds: event.delayMs / 1000,
            reason: event.reason,
          });
        } else {
          this.#print(
            "stderr",
            `ferry: ${escapeName(event.reason)}; retrying in ${event.delayMs / 1000} s (attempt ${
              event.attempt + 1
            })`,
          );
        }
        return;
      case "file-failed":
        this.#open.delete(event.path);
        if (this.mode === "json") {
          emitJsonSoon({ type: "file-failed", path: event.path, reason: event.reason });
        } else {
          this.#print(
            "stderr",
            `ferry: failed ${escapeName(event.path)}: ${escapeName(event.reason)}`,
          );
        }
    }
  }

  /** The summary; ends the progress display first. */
  summary(result: SendResult, to: string): void {
    this.close();
    if (this.mode === "json") {
      emitJson({
        type: "summary",
        to,
        files: result.files,
        bytes: result.bytes,
        resumedBytes: result.resumedBytes,
        already: result.already,
        new: result.files - result.updated,
        updated: result.updated,
        unchanged: result.unchanged,
        skipped: result.skipped,
        failed: result.failed,
        texts: result.texts,
        seconds: Math.round(result.seconds * 1000) / 1000,
        ok: result.failed === 0,
      });
      return;
    }
    if (result.texts > 0 && result.files === 0 && result.failed === 0) {
      writeText(
        "stdout",
        `ferry: sent a text to ${to} in ${formatSeconds(result.seconds)}; the receiver has it\n`,
      );
      return;
    }
    const resumed = result.resumedBytes > 0 ? `, ${formatBytes(result.resumedBytes)} resumed` : "";
    const already = (result.already > 0 ? `, ${result.already} already there` : "") +
      syncCounts(result.files, result.updated, result.unchanged);
    const failed = result.failed > 0 ? `, ${result.failed} failed` : "";
    const skipped = result.skipped > 0 ? `, ${result.skipped} skipped` : "";
    const line = `ferry: sent ${plural(result.files, "file")} (${
      formatBytes(result.bytes)
    }${resumed}) to ${to} in ${formatSeconds(result.seconds)}${already}${skipped}${failed}`;
    writeText(result.failed > 0 ? "stderr" : "stdout", `${line}\n`);
  }

  /** A warning of our own (not from a peer), before or during the transfer. */
  warning(message: string): void {
    this.event({ type: "warning", message });
  }

  /** Stops redrawing for a while (a question on the terminal); resume() starts again. */
  pause(): void {
    this.#timer?.cancel();
    this.#timer = null;
    this.#live?.clear();
  }

  resume(): void {
    if (this.#closed || this.mode === "plain" || this.#timer !== null) return;
    this.#timer = every(PROGRESS_INTERVAL_MS, () => this.#tick());
  }

  /** Stops redrawing and erases the progress line: whatever is printed next starts clean. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#timer?.cancel();
    this.#timer = null;
    this.#live?.clear();
  }

  /** The numbers now. */
  state(): ProgressState {
    return {
      done: this.#sent + this.#resumed - this.#dropped,
      totalBytes: this.#totals?.bytes ?? null,
      files: this.#files,
      totalFiles: this.#totals?.files ?? null,
      rate: this.#meter.rate(),
      current: this.#current === null ? null : escapeName(this.#current),
    };
  }

  #tick(): void {
    if (!this.#connected) {
      this.#live?.update([`connecting to ${this.#to}…`]);
      return;
    }
    if (this.#reconnecting !== null) {
      // Nothing moves meanwhile: no rate, no time left, no `progress` object (`retry` said it).
      const of = this.#attempts === null ? "" : ` of ${this.#attempts}`;
      this.#live?.update([`reconnecting to ${this.#to} (attempt ${this.#reconnecting}${of})…`]);
      return;
    }
    this.#meter.sample(this.#sent);
    const s = this.state();
    if (this.#live) {
      this.#live.update([progressLine(s, this.#live.columns() - 1)]);
      return;
    }
    // Nothing has moved before the first file's bytes: no progress object yet (the totals of the
    // counting walk may arrive before that, and are reported with the first move).
    if (s.done === 0 && s.files === 0) return;
    const moved = JSON.stringify([s.done, s.files, s.totalBytes, s.totalFiles, this.#current]);
    if (moved === this.#lastJson) return;
    this.#lastJson = moved;
    const eta = etaSeconds(s);
    emitJson({
      type: "progress",
      bytes: s.done,
      sentBytes: this.#sent,
      totalBytes: s.totalBytes,
      files: s.files,
      totalFiles: s.totalFiles,
      rate: s.rate === null ? null : Math.round(s.rate),
      eta: eta === null ? null : Math.round(eta),
      current: this.#current,
    });
  }

  /** Bytes now counted as done for `path`, until it is finished or its connection drops. */
  #count(path: string, bytes: number): void {
    this.#open.set(path, (this.#open.get(path) ?? 0) + bytes);
  }

  #print(stream: "stdout" | "stderr", text: string): void {
    if (this.#live && !this.#closed) this.#live.print(stream, text);
    else writeText(stream, `${text}\n`);
  }
}
