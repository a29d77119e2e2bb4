/**
 * A session's counts, for BYE (PROTOCOL.md §5.12) and its session-end event: files stored and
 * their bytes, files an earlier session of the transfer had stored, and what failed.
 */
import type { Entry } from "../protocol/messages.ts";

export class Tally {
  files = 0;
  bytes = 0;
  resumedBytes = 0;
  /** Files an earlier session of the transfer had stored (`have`). */
  already = 0;
  /** Files stored that replaced one at their name (`update`). */
  updated = 0;
  /** Files left as they were: the receiver's copy is the same (`update`). */
  unchanged = 0;
  /** Texts received whole and shown (PROTOCOL.md §5.15); not counted in BYE. */
  texts = 0;
  /** BYE's `failed`: refused entries and failed files, less damaged files sent again (§5.12). */
  failed = 0;
  /** Files that arrived damaged (Ack `retry`), by `resendKey`, until announced again. */
  #damaged = new Map<string, number>();

  /** A file stored: `bytes` received in this session, `resumed` held from an earlier one. */
  stored(bytes: number, resumed: number): void {
    this.files++;
    this.bytes += bytes;
    this.resumedBytes += resumed;
  }

  /**
   * An entry refused, or a file not stored; `damaged` names a file that arrived damaged, which
   * the sender may announce again.
   */
  fail(damaged?: Entry): void {
    this.failed++;
    if (damaged === undefined) return;
    const key = resendKey(damaged);
    this.#damaged.set(key, (this.#damaged.get(key) ?? 0) + 1);
  }

  /**
   * A file that arrived damaged stops counting as failed once the sender announces it again
   * (the same path, size and mtime): the resend's own outcome counts instead (PROTOCOL.md §5.12).
   */
  announced(entry: Entry): void {
    if (entry.kind === "dir") return;
    const key = resendKey(entry);
    const count = this.#damaged.get(key);
    if (count === undefined) return;
    if (count > 1) this.#damaged.set(key, count - 1);
    else this.#damaged.delete(key);
    this.failed--;
  }

  /** Whether a file that arrived damaged waits to be announced again. */
  get awaitsResend(): boolean {
    return this.#damaged.size > 0;
  }
}

/** What names a file across its resend: path, size and mtime, as the sender announced them. */
function resendKey(entry: Entry): string {
  return JSON.stringify([entry.path, entry.size, entry.mtime]);
}
