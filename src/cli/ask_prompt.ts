/**
 * `ferry serve --ask`: puts each session's question (src/server/ask.ts) to the person, one at a
 * time, so questions of sessions running at once never interleave. On a terminal it is asked in
 * words on standard error and answered y or n; with `--json` it is an `ask` object on standard
 * output, answered by a line of JSON on standard input (docs/JSON.md). Whatever is not a clear
 * yes declines: no answer by the deadline, the end of standard input, an answer that cannot be
 * read (said so, with an `answered` object or a line).
 */
import type { Question } from "../server/ask.ts";
import { escapeName } from "../escape.ts";
import { formatBytes, plural } from "./format.ts";
import { jsonLine } from "./output.ts";

/** Most characters of the sender's host name shown (it is escaped first). */
export const HOST_SHOWN = 64;
/** Longest answer line read; a longer one is refused. */
const MAX_ANSWER_BYTES = 4096;
/**
 * Most lines kept that came while no answer was awaited (more are dropped): standard input fed
 * faster than questions come (`yes | ferry serve --ask --json`) must not fill memory.
 */
const MAX_QUEUED_LINES = 16;

/** Standard input as lines, read by one task for the whole run; null at its end. */
export class LineSource {
  #lines: (string | null)[] = [];
  #waiting: ((line: string | null) => void) | null = null;
  #ended = false;

  constructor(readonly input: { read(p: Uint8Array): Promise<number | null> } = Deno.stdin) {
    this.#run().catch(() => this.#push(null));
  }

  /** The next line (without its line end), or null once the input has ended. */
  next(): Promise<string | null> {
    const line = this.#lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (this.#ended) return Promise.resolve(null);
    return new Promise((resolve) => this.#waiting = resolve);
  }

  /** Lines that came while nobody waited are not answers to a later question: forgets them. */
  drop(): void {
    this.#lines = this.#lines.filter((line) => line === null);
  }

  #push(line: string | null): void {
    if (line === null) this.#ended = true;
    const waiting = this.#waiting;
    this.#waiting = null;
    if (waiting) waiting(line);
    else if (line !== null && this.#lines.length < MAX_QUEUED_LINES) this.#lines.push(line);
  }

  async #run(): Promise<void> {
    const buf = new Uint8Array(4096);
    const decoder = new TextDecoder();
    let line: number[] = [];
    let tooLong = false;
    for (;;) {
      const n = await this.input.read(buf);
      if (n === null) break;
      for (let i = 0; i < n; i++) {
        const b = buf[i]!;
        if (b === 0x0a) {
          // A line longer than the bound is kept as a marker that cannot parse: it is refused.
          const text = tooLong ? "\u0000(too long)" : decoder.decode(new Uint8Array(line));
          this.#push(text.replace(/\r$/, ""));
          line = [];
          tooLong = false;
        } else if (line.length < MAX_ANSWER_BYTES) {
          line.push(b);
        } else {
          tooLong = true;
        }
      }
    }
    if (line.length > 0 || tooLong) {
      this.#push(tooLong ? "\u0000(too long)" : decoder.decode(new Uint8Array(line)));
    }
    this.#push(null);
  }
}

/** How a question was settled, for the `answered` object and the line that says it. */
type Settled =
  | { accept: boolean; by: "person" }
  | { accept: false; by: "timeout" | "withdrawn" | "closed" | "refused"; reason: string };

export interface AskPromptOptions {
  /** "terminal": words on standard error; "json": objects on standard output. */
  mode: "terminal" | "json";
  /** Where text goes. */
  write: (stream: "stdout" | "stderr", text: string) => void;
  /** Stops the progress display while a question is on the terminal, and starts it again. */
  pause(): void;
  resume(): void;
  lines?: LineSource;
}

export class AskPrompt {
  /** The question being asked, and those waiting their turn, in order. */
  #turn: Promise<unknown> = Promise.resolve();
  #lines: LineSource;

  constructor(readonly opts: AskPromptOptions) {
    this.#lines = opts.lines ?? new LineSource();
  }

  /** Asks `question` once the questions before it are settled; true to accept. */
  ask(question: Question, signal: AbortSignal): Promise<boolean> {
    const answer = this.#turn.then(() => this.#put(question, signal));
    this.#turn = answer.catch(() => {});
    return answer.then((settled) => settled.accept);
  }

  async #put(question: Question, signal: AbortSignal): Promise<Settled> {
    let settled: Settled;
    const left = question.deadline - Date.now();
    // The progress lines stay away from the question and its verdict, then come back.
    if (this.opts.mode === "terminal") this.opts.pause();
    try {
      if (signal.aborted) {
        settled = { accept: false, by: "withdrawn", reason: "the session ended before its turn" };
      } else if (left <= 0) {
        settled = {
          accept: false,
          by: "timeout",
          reason: "no answer in time (it waited its turn)",
        };
      } else {
        this.#lines.drop();
        this.#show(question, left);
        settled = await this.#answer(question, left, signal);
      }
      this.#report(question, settled);
    } finally {
      if (this.opts.mode === "terminal") this.opts.resume();
    }
    return settled;
  }

  /** Reads answers until one settles the question, its time is up, or its session ends. */
  async #answer(question: Question, ms: number, signal: AbortSignal): Promise<Settled> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let onAbort: (() => void) | undefined;
    const seconds = Math.round(ms / 1000);
    const stop = new Promise<Settled>((resolve) => {
      timer = setTimeout(
        () => resolve({ accept: false, by: "timeout", reason: `no answer within ${seconds} s` }),
        ms,
      );
      onAbort = () => resolve({ accept: false, by: "withdrawn", reason: "the session ended" });
      signal.addEventListener("abort", onAbort, { once: true });
    });
    try {
      for (;;) {
        const line = await Promise.race([this.#lines.next(), stop]);
        if (typeof line === "object" && line !== null) return line;
        if (line === null) {
          return { accept: false, by: "closed", reason: "standard input is closed" };
        }
        const settled = this.opts.mode === "json"
          ? readJsonAnswer(line, question.session)
          : readWordAnswer(line);
        if (settled !== null) return settled;
        this.opts.write("stderr", "Please answer y (accept) or n (decline): ");
      }
    } finally {
      clearTimeout(timer);
      if (onAbort) signal.removeEventListener("abort", onAbort);
    }
  }

  #show(q: Question, ms: number): void {
    const seconds = Math.round(ms / 1000);
    if (this.opts.mode === "json") {
      this.opts.write(
        "stdout",
        jsonLine({
          type: "ask",
          session: q.session,
          peer: q.peer,
          host: q.host,
          totalFiles: q.totals?.files ?? null,
          totalBytes: q.totals?.bytes ?? null,
          entries: q.entries,
          files: q.files,
          names: q.names,
          text: q.text,
          timeout: seconds,
        }),
      );
      return;
    }
    const host = q.host === null ? "" : ` (host "${shownHost(q.host)}")`;
    const lines = [`ferry: [${q.session}] ${escapeName(q.peer)}${host} wants to send ${what(q)}`];
    for (const name of q.names) lines.push(`  ${escapeName(name)}`);
    if (q.entries > q.names.length + (q.text === null ? 0 : 1)) lines.push("  …");
    lines.push(`Accept? [y/N] (declines in ${seconds} s without an answer): `);
    this.opts.write("stderr", lines.join("\n"));
  }

  #report(q: Question, settled: Settled): void {
    if (this.opts.mode === "json") {
      const reason = settled.by === "person" ? {} : { reason: settled.reason };
      this.opts.write(
        "stdout",
        jsonLine({
          type: "answered",
          session: q.session,
          accept: settled.accept,
          by: settled.by,
          ...reason,
        }),
      );
      return;
    }
    // The question's line ends here (the person's Enter ended it already).
    const newline = settled.by === "person" ? "" : "\n";
    const verdict = settled.accept
      ? "accepted"
      : settled.by === "person"
      ? "declined"
      : `declined: ${settled.reason}`;
    this.opts.write("stderr", `${newline}ferry: [${q.session}] ${verdict}\n`);
  }
}

/** What the question says is coming: totals if told, else what the first batch holds. */
function what(q: Question): string {
  const parts: string[] = [];
  if (q.text !== null) parts.push(`a text (${formatBytes(q.text)})`);
  if (q.totals !== null) {
    if (q.totals.files > 0 || q.text === null) {
      const bytes = q.totals.bytes === null ? "size not known yet" : formatBytes(q.totals.bytes);
      parts.push(`${plural(q.totals.files, "file")} (${bytes})`);
    }
  } else if (q.entries > (q.text === null ? 0 : 1)) {
    parts.push(
      `files (totals not known yet; the first batch has ${plural(q.files, "file")} in ${
        plural(q.entries - (q.text === null ? 0 : 1), "entry", "entries")
      })`,
    );
  }
  return `${parts.join(" and ")}:`;
}

/** The sender's host name as shown: escaped, and cut to HOST_SHOWN characters. */
export function shownHost(host: string): string {
  const escaped = escapeName(host);
  return escaped.length > HOST_SHOWN ? `${escaped.slice(0, HOST_SHOWN)}…` : escaped;
}

/** y/yes accepts; n/no or an empty line declines; anything else is asked again (null). */
function readWordAnswer(line: string): Settled | null {
  const word = line.trim().toLowerCase();
  if (word === "y" || word === "yes") return { accept: true, by: "person" };
  if (word === "n" || word === "no" || word === "") return { accept: false, by: "person" };
  return null;
}

/**
 * `{"session":N,"accept":true|false}` for this question's session; anything else is refused,
 * and declines it (fail closed).
 */
function readJsonAnswer(line: string, session: number): Settled {
  const refused = (why: string): Settled => ({
    accept: false,
    by: "refused",
    reason: `answer refused (${why}); expected {"session":${session},"accept":true} or false`,
  });
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return refused("not JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return refused("not a JSON object");
  }
  const answer = value as Record<string, unknown>;
  if (answer.session !== session) return refused(`not for session ${session}`);
  if (typeof answer.accept !== "boolean") return refused("accept is not true or false");
  return { accept: answer.accept, by: "person" };
}
