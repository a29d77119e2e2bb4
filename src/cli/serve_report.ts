/**
 * What `ferry serve` shows while it runs: in `plain` mode a line per
 * finished session and one per problem; in `live` mode also a progress line
 * per running session, redrawn at the bottom of the terminal; in `json`
 * mode NDJSON objects on stdout (docs/JSON.md).
 */
import type { ServerEvent } from "../server/session.ts";
import { escapeName } from "./escape.ts";
import { formatBytes, formatSeconds, plural } from "./format.ts";
import { emitJson, type Mode, writeText } from "./output.ts";
import { LiveArea, PROGRESS_INTERVAL_MS, progressLine, RateMeter } from "./progress.ts";

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
}

interface SessionView {
  peer: string;
  /** Bytes received in this session (resumed bytes not included). */
  bytes: number;
  resumed: number;
  files: number;
  skipped: number;
  current: string | null;
  meter: RateMeter;
  /** What the last `progress` object said. */
  lastJson: string;
  /** What the sender has announced so far (null until its first batch). */
  totalFiles: number | null;
  totalBytes: number | null;
}

export class ServeReporter {
  #sessions = new Map<number, SessionView>();
  #live: LiveArea | null;
  #timer: ReturnType<typeof setInterval> | null = null;

  constructor(readonly mode: Mode, readonly quiet: boolean) {
    this.#live = mode === "live" ? new LiveArea() : null;
    if (mode !== "plain") {
      this.#timer = setInterval(() => this.#tick(), PROGRESS_INTERVAL_MS);
      Deno.unrefTimer(this.#timer);
    }
  }

  start(info: ServeStart): void {
    if (this.mode !== "json") return; // serve.ts prints the banner
    emitJson({
      type: "start",
      command: "serve",
      dir: info.dir,
      host: info.host,
      port: info.port,
      addresses: info.addresses,
      codeRequired: info.codeRequired,
      code: info.code,
      discoveryPort: info.discoveryPort,
    });
  }

  warning(message: string): void {
    if (this.mode === "json") emitJson({ type: "warning", message });
    else this.#print("stderr", `ferry: warning: ${message}`);
  }

  event(event: ServerEvent): void {
    const json = this.mode === "json";
    switch (event.type) {
      case "session-start":
        this.#sessions.set(event.session, {
          peer: event.peer,
          bytes: 0,
          resumed: 0,
          files: 0,
          skipped: 0,
          current: null,
          meter: new RateMeter(),
          lastJson: "",
          totalFiles: null,
          totalBytes: null,
        });
        if (json) emitJson({ type: "session-start", session: event.session, peer: event.peer });
        return;
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
          emitJson({
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
      case "announced": {
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
          emitJson({
            type: "file-done",
            session: event.session,
            name: event.name,
            bytes: event.bytes,
            resumed: event.resumed,
          });
        }
        return;
      }
      case "refused":
      case "file-failed": {
        const view = this.#sessions.get(event.session);
        if (view && event.type === "refused" && event.reason.startsWith("skipped")) view.skipped++;
        if (json) {
          emitJson({
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
      case "session-end": {
        const view = this.#sessions.get(event.session);
        this.#sessions.delete(event.session);
        if (json) {
          emitJson({
            type: "summary",
            session: event.session,
            peer: event.peer,
            files: event.files,
            bytes: event.bytes,
            resumedBytes: event.resumedBytes,
            skipped: view?.skipped ?? 0,
            failed: event.failed,
            seconds: Math.round(event.seconds * 1000) / 1000,
            ok: event.error === undefined && event.failed === 0,
            error: event.error ?? null,
          });
          return;
        }
        const resumed = event.resumedBytes > 0
          ? `, ${formatBytes(event.resumedBytes)} resumed`
          : "";
        const what = `${plural(event.files, "file")} (${formatBytes(event.bytes)}${resumed})`;
        const failed = event.failed > 0 ? `, ${event.failed} failed` : "";
        if (event.error) {
          this.#print(
            "stderr",
            `ferry: [${event.session}] ${
              escapeName(event.peer)
            }: ended early after ${what}${failed}: ${escapeName(event.error)}`,
          );
        } else if (!this.quiet || event.failed > 0) {
          this.#print(
            "stdout",
            `ferry: [${event.session}] received ${what}${failed} from ${
              escapeName(event.peer)
            } in ${formatSeconds(event.seconds)}`,
          );
        }
        this.#redraw();
      }
    }
  }

  /** The server stopped: erase the progress lines and say so. */
  stopped(): void {
    this.close();
    if (this.mode === "json") emitJson({ type: "stopped" });
    else if (!this.quiet) writeText("stdout", "ferry: stopped\n");
  }

  close(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#live?.clear();
    this.#live = null;
  }

  #tick(): void {
    for (const [id, view] of this.#sessions) {
      view.meter.sample(view.bytes);
      if (this.mode !== "json") continue;
      const moved = `${view.bytes} ${view.files} ${view.current}`;
      if (moved === view.lastJson) continue;
      view.lastJson = moved;
      const rate = view.meter.rate();
      emitJson({
        type: "progress",
        session: id,
        bytes: view.bytes + view.resumed,
        receivedBytes: view.bytes,
        files: view.files,
        rate: rate === null ? null : Math.round(rate),
        current: view.current,
      });
    }
    this.#redraw();
  }

  /** One line per running session: `[2] 192.168.1.7:50312  12.5 MB / ?  files 3/?  25.0 MB/s  a.jpg`. */
  #redraw(): void {
    if (!this.#live) return;
    const width = this.#live.columns() - 1;
    this.#live.update(
      [...this.#sessions].map(([id, view]) =>
        progressLine(
          {
            done: view.bytes + view.resumed,
            totalBytes: null,
            files: view.files,
            totalFiles: null,
            rate: view.meter.rate(),
            current: view.current === null ? null : escapeName(view.current),
          },
          width,
          `[${id}] ${escapeName(view.peer)}  `,
        )
      ),
    );
  }

  #print(stream: "stdout" | "stderr", text: string): void {
    if (this.#live) this.#live.print(stream, text);
    else writeText(stream, `${text}\n`);
  }
}
