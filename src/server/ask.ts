/**
 * `serve --ask`: before a session's first batch is planned, the person receiving is asked
 * whether to take it. This is what the session tells them, and how their answer comes back;
 * how the question is put (a terminal, JSON) is the CLI's (src/cli/ask_prompt.ts).
 */
import type { Totals } from "../protocol/messages.ts";

/** How many names of the first batch a question carries, at most. */
export const QUESTION_NAMES = 5;

/** What the person is asked about: who sends, and what. Every string is the peer's, raw. */
export interface Question {
  session: number;
  /** The sender's address, "ADDRESS:PORT". */
  peer: string;
  /** The host name the sender gave in HELLO (unescaped, at most MAX_HOST_UNITS), or null. */
  host: string | null;
  /** The whole transfer's totals, if the sender told them with its first batch; else null. */
  totals: Totals | null;
  /** Entries in the first batch (files and folders), and how many of them are files. */
  entries: number;
  files: number;
  /** The first names of the first batch (at most QUESTION_NAMES), as announced. */
  names: string[];
  /** The first batch carries a text (PROTOCOL.md §5.15), and its size in bytes. */
  text: number | null;
  /** When an unanswered question declines (Date.now() milliseconds). */
  deadline: number;
}

/**
 * Puts `question` to the person; resolves true to accept, false to decline. `signal` aborts
 * when the session ends first: the question is withdrawn (the answer no longer matters).
 */
export type Ask = (question: Question, signal: AbortSignal) => Promise<boolean>;

/** The question about a first batch (ANNOUNCE's entries, unchecked). */
export function questionOf(
  base: Pick<Question, "session" | "peer" | "host" | "deadline">,
  entries: unknown[],
  totals: Totals | undefined,
): Question {
  const names: string[] = [];
  let files = 0;
  let text: number | null = null;
  for (const raw of entries) {
    const e = raw as Record<string, unknown> | null;
    if (typeof e !== "object" || e === null) continue;
    if (e.kind === "text") {
      if (typeof e.size === "number") text = (text ?? 0) + e.size;
      continue;
    }
    if (e.kind === "file") files++;
    if (typeof e.path === "string" && names.length < QUESTION_NAMES) names.push(e.path);
  }
  return { ...base, totals: totals ?? null, entries: entries.length, files, names, text };
}
