/**
 * What a receiver's sessions report, for `ferry serve`'s output (serve_report.ts): every part of
 * a session (handshake.ts, planner.ts, file_receiver.ts, ack_queue.ts) reports through one
 * `Report`, each event naming its session.
 */

export type ServerEvent =
  | { type: "session-start"; session: number; peer: string }
  /** A sender failed to prove the code (`failures` in the guard's window; `locked` now). */
  | { type: "wrong-code"; session: number; peer: string; failures: number; locked: boolean }
  /**
   * More than `failures` wrong codes within `windowMinutes` across all addresses: every key
   * share now waits `delayMs` more. Reported once per window.
   */
  | {
    type: "guess-slowdown";
    session: number;
    failures: number;
    windowMinutes: number;
    delayMs: number;
  }
  | { type: "file-start"; session: number; path: string; size: number | null; resumed: number }
  /**
   * The whole transfer's totals, as the sender told them (ANNOUNCE `totals`): its files and
   * their bytes (null: some size is unknown, standard input).
   */
  | { type: "totals"; session: number; files: number; bytes: number | null }
  /** `bytes` more of the current file arrived. */
  | { type: "progress"; session: number; bytes: number }
  /** A file stored: `path` as the sender announced it, `name` the path it was stored under. */
  | {
    type: "file";
    session: number;
    path: string;
    name: string;
    bytes: number;
    resumed: number;
    /** It replaced a file at its name (`update`). */
    replaced?: boolean;
    /** The verified SHA-256 (hex), in a sha256 session. */
    sha256?: string;
  }
  /** Under `update`, the receiver's copy is the same: left as it is, not sent. */
  | { type: "unchanged"; session: number; path: string; bytes: number }
  /** Of what was listed, files the sender found the same and left unannounced (LISTED). */
  | { type: "unchanged-listed"; session: number; files: number; bytes: number }
  /** An earlier session of this transfer stored this file as `name` (`have`): not sent again. */
  | { type: "already"; session: number; path: string; name: string; bytes: number }
  | { type: "file-failed"; session: number; path: string; reason: string }
  | { type: "refused"; session: number; path: string; reason: string }
  /** A text arrived whole (PROTOCOL.md §5.15): shown, never stored. */
  | { type: "text"; session: number; text: string }
  | {
    type: "session-end";
    session: number;
    peer: string;
    files: number;
    bytes: number;
    resumedBytes: number;
    /** Files an earlier session of the transfer had stored (`have`). */
    already: number;
    /** Of `files`, those that replaced one at their name (`update`). */
    updated?: number;
    /** Files left as they were, the same as the sender's (`update`). */
    unchanged?: number;
    /** Texts received (PROTOCOL.md §5.15). */
    texts: number;
    failed: number;
    seconds: number;
    /** Why it ended early (absent: it ended normally), for people, and as a cause. */
    error?: string;
    cause?: EndCause;
  };

/** Why a session ended early. */
export type EndCause =
  /** The connection ended before DONE; a resume-capable sender's transfer can resume. */
  | "disconnected"
  /** A sender without the code left when the receiver asked for it. */
  | "no-code"
  | "wrong-code"
  /** Its address is locked out after too many wrong codes. */
  | "locked-out"
  | "busy"
  /** The sender stopped the session with an ERROR. */
  | "sender-error"
  /** The receiver is stopping. */
  | "stopped"
  /** A newer session of the same transfer took over. */
  | "superseded"
  | "timeout"
  /** The person receiving declined it (`serve --ask`), or did not answer in time. */
  | "declined"
  | "protocol"
  | "internal";

/** How a session ended early: for people, and as a cause. */
export interface EndedEarly {
  error: string;
  cause: EndCause;
}

/** Where a session's parts send their events (the session passes them on while it runs). */
export type Report = (event: ServerEvent) => void;
