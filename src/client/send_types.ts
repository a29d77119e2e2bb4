/**
 * What the sender's pieces share: the events `send()` reports and the result
 * it adds up to (the public types, re-exported by send_session.ts), the
 * numbered entry that goes from the walk through a batch to the file sender,
 * and Outcomes, the one place a file's fate becomes both an event and a count.
 */
import type { DigestName } from "../protocol/digests.ts";
import type { Suite } from "../transport/aead.ts";
import type { LocalEntry } from "./walk.ts";

export type SendEvent =
  | {
    type: "connected";
    to: string;
    server: string;
    attempt: number;
    /** The record suite of the encrypted channel, or null on the plain channel. */
    cipher: Suite | null;
    /** The digest the receiver chose for every FILE_END. */
    digest: DigestName;
  }
  | { type: "skipped"; path: string; reason: string }
  /** A file's data starts (after any resumed prefix). */
  | { type: "file-start"; path: string; size: number | null; resumed: number }
  /** `bytes` more of the current file went out (counts only bytes sent in this run). */
  | { type: "progress"; bytes: number }
  | {
    type: "file-done";
    path: string;
    name: string;
    bytes: number;
    resumed: number;
    /** It replaced an older file at its name on the receiver (`update`). */
    replaced: boolean;
    /** The whole file's SHA-256 in hex, when the session's digest is sha256. */
    sha256?: string;
  }
  /** The receiver's copy is the same (`update`: size and time, or content with --checksum): not sent. */
  | { type: "unchanged"; path: string; bytes: number }
  /** The receiver has the text, whole (its Ack said ok). */
  | { type: "text-done"; bytes: number }
  /** The receiver already has this file from an interrupted run of this transfer: not sent. */
  | { type: "already"; path: string; bytes: number }
  | { type: "file-failed"; path: string; reason: string }
  | { type: "warning"; message: string }
  | { type: "retry"; attempt: number; delayMs: number; reason: string };

export interface SendResult {
  /** Files delivered and verified by this run. */
  files: number;
  /** Bytes sent by this run (resumed bytes not included). */
  bytes: number;
  /** Bytes the receiver already held from an interrupted run, not sent again. */
  resumedBytes: number;
  /** Files the receiver already had from an interrupted run of this transfer. */
  already: number;
  /** Of `files`, those that replaced an older copy on the receiver (`update`). */
  updated: number;
  /** Files the receiver had the same already, not sent (`update`). */
  unchanged: number;
  skipped: number;
  failed: number;
  seconds: number;
  /** Texts the receiver has (`send --text`). */
  texts: number;
}

export function noResult(): SendResult {
  return {
    files: 0,
    bytes: 0,
    resumedBytes: 0,
    already: 0,
    updated: 0,
    unchanged: 0,
    skipped: 0,
    failed: 0,
    seconds: 0,
    texts: 0,
  };
}

/** An entry of this session, numbered for the wire. */
export interface Numbered extends LocalEntry {
  id: number;
  /** This is the second try of a file that arrived damaged. */
  resend?: boolean;
  /** Bytes the receiver already held (a resumed file). */
  resumed?: number;
  /** The SHA-256 (hex) FILE_END carried, in a sha256 session: reported once the file is acked. */
  sha256?: string;
}

/** A session's counts, and the events that go with them: one call per outcome. */
export class Outcomes {
  readonly tally: SendResult = noResult();

  constructor(readonly emit: (event: SendEvent) => void) {}

  /** Stored and verified by the receiver (its Ack said ok). */
  delivered(
    path: string,
    name: string,
    bytes: number,
    resumed: number,
    replaced = false,
    sha256?: string,
  ): void {
    this.tally.files++;
    if (replaced) this.tally.updated++;
    this.tally.bytes += bytes;
    this.tally.resumedBytes += resumed;
    this.emit(
      sha256 === undefined
        ? { type: "file-done", path, name, bytes, resumed, replaced }
        : { type: "file-done", path, name, bytes, resumed, replaced, sha256 },
    );
  }

  /** The receiver's copy is the same as ours (`update`): not sent. */
  unchanged(path: string, bytes: number): void {
    this.tally.unchanged++;
    this.emit({ type: "unchanged", path, bytes });
  }

  /** The receiver has the text (its Ack said ok). */
  textDelivered(bytes: number): void {
    this.tally.texts++;
    this.emit({ type: "text-done", bytes });
  }

  /** The receiver has it from an interrupted run of this transfer. */
  already(path: string, bytes: number): void {
    this.tally.already++;
    this.emit({ type: "already", path, bytes });
  }

  skipped(path: string, reason: string): void {
    this.tally.skipped++;
    this.emit({ type: "skipped", path, reason });
  }

  failed(path: string, reason: string): void {
    this.tally.failed++;
    this.emit({ type: "file-failed", path, reason });
  }
}
