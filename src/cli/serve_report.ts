/**
 * What `ferry serve` shows while it runs: in `plain` mode a line per
 * finished session, one per file stored under another name than the
 * sender's, and one per problem; in `live` mode also a progress line per
 * running session, redrawn at the bottom of the terminal; in `json` mode
 * NDJSON objects on stdout (docs/JSON.md).
 */
import type { EndCause, ServerEvent } from "../server/server_events.ts";
import { escapeName } from "../escape.ts";
import { formatBytes, formatSeconds, plural, syncCounts } from "./format.ts";
import { jsonLine, type Mode, writeText } from "./output.ts";
import {
  etaSeconds,
  LiveArea,
  PROGRESS_INTERVAL_MS,
  progressLine,
  type ProgressState,
  RateMeter,
  terminalColumns,
} from "./progress.ts";

export interface ServeStart {
  dir: string;
  host: string;
  port: number;
  addresses: string[];
  /** The code senders need, shown to the operator who runs this; null when open or from FERRY_CODE. */
  code: string | null;
  /** Whether senders need a code (false: `--open`). */
  codeRequired: boolean;
  /** The UDP port discovery answers on, null with --no-discovery (or if it could not start). */
  discoveryPort: number | null;
  /** The port of the page for browsers (`--web`), else null. */
  webPort: number | null;
}

interface SessionView {
  peer: string;
  /** Bytes received in this session (resumed bytes not included). */
  bytes: number;
  resumed: number;
  /** Files stored in this session. */
  files: number;
  /** Files an earlier session of the transfer had stored (`have`), and their bytes. */
  already: number;
  alreadyBytes: number;
  skipped: number;
  /** Files left as they were, the same as the sender's (`update`), and their bytes. */
  unchanged: number;
  unchangedBytes: number;
  current: string | null;
  meter: RateMeter;
  /** What the last `progress` object said. */
  lastJson: string;
  /** The whole transfer's totals, once the sender tells them (null: unknown). */
  totalFiles: number | null;
  totalBytes: number | null;
}

/** Session ends that are about a sender's code, or declined (`--ask`): one line of their own. */
const CODE_ENDS: ReadonlySet<EndCause> = new Set([
  "no-code",
  "wrong-code",
  "locked-out",
  "busy",
  "declined",
]);

/** Most characters held while a question is on the terminal (ServeReporter.#held). */
const HELD_MAX_CHARS = 1024 * 1024;

export class ServeReporter {
  #sessions = new Map<number, SessionView>();
  #live: LiveArea | null;
  #timer: ReturnType<typeof setInterval> | null = null;
  /** A question is on the terminal (`--ask`): the progress lines stay away meanwhile. */
  #paused = false;
  /**
   * What was to be printed while a question is on the terminal (another session's text, a
   * refusal), printed after it, so that nothing a sender sends lands among the question's lines;
   * at most HELD_MAX_CHARS, beyond which lines are printed as they come.
   */
  #held: { stream: "stdout" | "stderr"; text: string }[] = [];
  #heldChars = 0;

  /** `write` and `columns` are where output goes and the terminal's width (tests give their own). */
  constructor(
    readonly mode: Mode,
    readonly quiet: boolean,
    readonly write: (stream: "stdout" | "stderr", text: string) => void = writeText,
    columns: () => number = terminalColumns,
  ) {
    this.#live = mode === "live" ? new LiveArea(write, columns) : null;
    if (mode !== "plain") {
      this.#timer = setInterval(() => this.tick(), PROGRESS_INTERVAL_MS);
      Deno.unrefTimer(this.#timer);
    }
  }

  start(info: ServeStart): void {
    if (this.mode !== "json") return; // serve.ts prints the banner
    this.#emit({
      type: "start",
      command: "serve",
      dir: info.dir,
      host: info.host,
      port: info.port,
      addresses: info.addresses,
      codeRequired: info.codeRequired,
      code: info.code,
      discoveryPort: info.discoveryPort,
      webPort: info.webPort,
    });
  }

  warning(message: string): void {
    if (this.mode === "json") this.#emit({ type: "warning", message });
    else this.#print("stderr", `ferry: warning: ${message}`);
  }

  event(event: ServerEvent): void {
    const json = this.mode === "json";
    switch (event.type) {
      case "session-start": {
        const view: SessionView = {
          peer: event.peer,
          bytes: 0,
          resumed: 0,
          files: 0,
          already: 0,
          alreadyBytes: 0,
          skipped: 0,
          unchanged: 0,
          unchangedBytes: 0,
          current: null,
          meter: new RateMeter(),
          lastJson: "",
          totalFiles: null,
          totalBytes: null,
        };
        // Nothing has moved yet: no `progress` object until something does.
        view.lastJson = progressKey(view);
        this.#sessions.set(event.session, view);
        if (json) this.#emit({ type: "session-start", session: event.session, peer: event.peer });
        return;
      }
      case "guess-slowdown":
        // Many addresses guessing together: the operator should know why every sender waits.
        this.warning(
          `more than ${event.failures} wrong codes within ${event.windowMinutes} min from all ` +
            `addresses together: every key exchange now waits ${event.delayMs / 1000} s more`,
        );
        return;
      case "file-start": {
        const view = this.#sessions.get(event.session);
        if (view) {
          view.current = event.path;
          view.resumed += event.resumed;
        }
        if (json) {
          this.#emit({
            type: "file-start",
            session: event.session,
            path: event.path,
            size: event.size,
            resumed: event.resumed,
          });
        }
        return;
      }
      case "progress": {
        const view = this.#sessions.get(event.session);
        if (view) view.bytes += event.bytes;
        return;
      }
      case "totals": {
        const view = this.#sessions.get(event.session);
        if (view) {
          view.totalFiles = event.files;
          view.totalBytes = event.bytes;
        }
        return;
      }
      case "file": {
        const view = this.#sessions.get(event.session);
        if (view) view.files++;
        if (json) {
          this.#emit({
            type: "file-done",
            session: event.session,
            path: event.name,
            name: event.name,
            announced: event.path,
            bytes: event.bytes,
            resumed: event.resumed,
            replaced: event.replaced === true,
            ...(event.sha256 === undefined ? {} : { sha256: event.sha256 }),
          });
        } else if (event.name !== event.path && !this.quiet) {
          // Stored under another name (the sender's was taken): the log says where it is.
          this.#print(
            "stdout",
            `ferry: [${event.session}] ${escapeName(event.path)} → ${escapeName(event.name)} (${
              formatBytes(event.bytes + event.resumed)
            })`,
          );
        }
        return;
      }
      case "already": {
        const view = this.#sessions.get(event.session);
        if (view) {
          view.already++;
          view.alreadyBytes += event.bytes;
        }
        if (json) {
          this.#emit({
            type: "already",
            session: event.session,
            path: event.name,
            announced: event.path,
            bytes: event.bytes,
          });
        }
        return;
      }
      case "unchanged": {
        const view = this.#sessions.get(event.session);
        if (view) {
          view.unchanged++;
          view.unchangedBytes += event.bytes;
        }
        if (json) {
          this.#emit({
            type: "unchanged",
            session: event.session,
            path: event.path,
            bytes: event.bytes,
          });
        }
        return;
      }
      case "unchanged-listed": {
        const view = this.#sessions.get(event.session);
        if (view) {
          view.unchanged += event.files;
          view.unchangedBytes += event.bytes;
        }
        return;
      }
      case "refused":
      case "file-failed": {
        const view = this.#sessions.get(event.session);
        if (view && event.type === "refused" && event.reason.startsWith("skipped")) view.skipped++;
        if (json) {
          this.#emit({
            type: event.type,
            session: event.session,
            path: event.path,
            reason: event.reason,
          });
        } else {
          this.#print(
            "stderr",
            `ferry: [${event.session}] ${escapeName(event.path)}: ${escapeName(event.reason)}`,
          );
        }
        return;
      }
      case "text": {
        // The text is what was sent: shown whatever --quiet says, escaped, a line at a time.
        if (json) {
          this.#emit({ type: "text", session: event.session, text: event.text });
          return;
        }
        const peer = this.#sessions.get(event.session)?.peer ?? "the sender";
        const lines = event.text.split("\n").map((line) => `  ${escapeName(line)}`);
        this.#print(
          "stdout",
          `ferry: [${event.session}] text from ${escapeName(peer)}:\n${lines.join("\n")}`,
        );
        return;
      }
      case "session-end": {
        const view = this.#sessions.get(event.session);
        this.#sessions.delete(event.session);
        if (json) {
          this.#emit({
            type: "summary",
            session: event.session,
            peer: event.peer,
            files: event.files,
            bytes: event.bytes,
            resumedBytes: event.resumedBytes,
            already: event.already,
            new: event.files - (event.updated ?? 0),
            updated: event.updated ?? 0,
            unchanged: event.unchanged ?? 0,
            skipped: view?.skipped ?? 0,
            failed: event.failed,
            texts: event.texts,
            seconds: Math.round(event.seconds * 1000) / 1000,
            ok: event.error === undefined && event.failed === 0,
            error: event.error ?? null,
            cause: event.cause ?? null,
          });
          return;
        }
        const resumed = event.resumedBytes > 0
          ? `, ${formatBytes(event.resumedBytes)} resumed`
          : "";
        const files = `${plural(event.files, "file")} (${formatBytes(event.bytes)}${resumed})`;
        const text = event.texts === 0 ? "" : event.texts === 1 ? "a text" : `${event.texts} texts`;
        const what = text === "" ? files : event.files === 0 ? text : `${text} and ${files}`;
        const already = (event.already > 0 ? `, ${event.already} already there` : "") +
          syncCounts(event.files, event.updated ?? 0, event.unchanged ?? 0);
        const failed = event.failed > 0 ? `, ${event.failed} failed` : "";
        if (event.error && event.cause && CODE_ENDS.has(event.cause)) {
          // Nothing was received: no counts, just who it was and what happened.
          this.#print(
            "stderr",
            `ferry: [${event.session}] ${escapeName(event.peer)}: ${escapeName(event.error)}`,
          );
        } else if (event.error) {
          this.#print(
            "stderr",
            `ferry: [${event.session}] ${
              escapeName(event.peer)
            }: ended early after ${what}${already}${failed}: ${escapeName(event.error)}`,
          );
        } else if (!this.quiet || event.failed > 0) {
          this.#print(
            "stdout",
            `ferry: [${event.session}] received ${what}${already}${failed} from ${
              escapeName(event.peer)
            } in ${formatSeconds(event.seconds)}`,
          );
        }
        this.#redraw();
      }
    }
  }

  /** Stops redrawing the progress lines while a question is on the terminal; resume() ends it. */
  pause(): void {
    this.#paused = true;
    this.#live?.clear();
  }

  resume(): void {
    this.#paused = false;
    this.#printHeld();
    this.#redraw();
  }

  #printHeld(): void {
    const held = this.#held;
    this.#held = [];
    this.#heldChars = 0;
    for (const { stream, text } of held) this.#print(stream, text);
  }

  /** The server stopped: erase the progress lines and say so. */
  stopped(): void {
    this.close();
    if (this.mode === "json") this.#emit({ type: "stopped" });
    else if (!this.quiet) this.write("stdout", "ferry: stopped\n");
  }

  close(): void {
    this.#paused = false;
    this.#printHeld();
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#live?.clear();
    this.#live = null;
  }

  /** Samples the rates, and sends `progress` objects or redraws the progress lines (the timer's work). */
  tick(): void {
    for (const [id, view] of this.#sessions) {
      view.meter.sample(view.bytes);
      if (this.mode !== "json") continue;
      const moved = progressKey(view);
      if (moved === view.lastJson) continue;
      view.lastJson = moved;
      const s = state(view);
      const eta = etaSeconds(s);
      this.#emit({
        type: "progress",
        session: id,
        bytes: s.done,
        receivedBytes: view.bytes,
        files: s.files,
        totalBytes: s.totalBytes,
        totalFiles: s.totalFiles,
        rate: s.rate === null ? null : Math.round(s.rate),
        eta: eta === null ? null : Math.round(eta),
        current: view.current,
      });
    }
    this.#redraw();
  }

  /**
   * One line per running session:
   * `[2] 192.168.1.7:50312  12.5 MB / 200 MB (6%)  files 3/120  25.0 MB/s  ETA 0:07  a.jpg`,
   * with `?` for totals the sender has not told (yet).
   */
  #redraw(): void {
    if (!this.#live || this.#paused) return;
    const width = this.#live.columns() - 1;
    this.#live.update(
      [...this.#sessions].map(([id, view]) =>
        progressLine(state(view), width, `[${id}] ${escapeName(view.peer)}  `)
      ),
    );
  }

  #emit(value: Record<string, unknown> & { type: string }): void {
    this.write("stdout", jsonLine(value));
  }

  #print(stream: "stdout" | "stderr", text: string): void {
    if (this.#paused && this.#heldChars + text.length <= HELD_MAX_CHARS) {
      this.#held.push({ stream, text });
      this.#heldChars += text.length;
      return;
    }
    if (this.#live) this.#live.print(stream, text);
    else this.write(stream, `${text}\n`);
  }
}

/** What a `progress` object would say that moves (the rate aside). */
function progressKey(view: SessionView): string {
  const s = state(view);
  return JSON.stringify([s.done, s.files, s.totalBytes, s.totalFiles, view.current]);
}

/**
 * A session's numbers now: bytes and files done (received, resumed, and those an earlier session
 * of the transfer stored) out of the sender's totals.
 */
function state(view: SessionView): ProgressState {
  return {
    done: view.bytes + view.resumed + view.alreadyBytes + view.unchangedBytes,
    totalBytes: view.totalBytes,
    files: view.files + view.already + view.unchanged,
    totalFiles: view.totalFiles,
    rate: view.meter.rate(),
    current: view.current === null ? null : escapeName(view.current),
  };
}
