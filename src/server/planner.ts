/**
 * ANNOUNCE → PLAN (PROTOCOL.md §5.4, §5.5, §6.1, §6.2, §7, §9): the receiver's decision on each
 * announced entry, in announce order. It checks the batch and id sequence and the flow-control
 * window, then each entry: its fields, the receiver's limits, its name, the conflict policy,
 * whether an earlier session of the transfer stored it already (`have`), the free space, and
 * what partial is held to offer a resume from. Accepted entries join the queue the data stream
 * follows (accepted.ts). Everything it asks of the receiving folder goes through `inbox` and
 * `ensure`, so a fake of them is enough to test it.
 */
import { ProtocolError } from "../protocol/errors.ts";
import { bytesToHex } from "../protocol/bytes.ts";
import type { Digest } from "../protocol/digests.ts";
import { ANNOUNCE_WINDOW } from "../protocol/limits.ts";
import {
  type Announce,
  checkEntry,
  type Decision,
  type Entry,
  entryId,
  type Plan,
} from "../protocol/messages.ts";
import type { AcceptedQueue, SessionBytes } from "./accepted.ts";
import {
  childPath,
  type ConflictPolicy,
  type HeldPartial,
  type Inbox,
  MAX_RENAME_TRIES,
  numberedName,
  placedSince,
  Refusal,
  replaces,
  type TransferStart,
} from "./inbox.ts";
import type { FileReader, Looked } from "./folders.ts";
import type { Resume } from "./incoming_file.ts";
import type { Report } from "./server_events.ts";
import type { ServerLimits } from "./server_limits.ts";
import { SMALL_FILE_MAX } from "./small_file.ts";
import type { Tally } from "./tally.ts";

/** What the planner asks of the receiving folder (Inbox). */
export type PlannerInbox = Pick<
  Inbox,
  | "parse"
  | "existing"
  | "freeBytes"
  | "claimPartial"
  | "readPartial"
  | "releasePartial"
  | "dropPartial"
  | "reserved"
>;

export interface PlannerOptions {
  session: number;
  report: Report;
  inbox: PlannerInbox;
  /** Makes sure folder `parts` exists beneath DIR (Folders.ensure); returns its absolute path. */
  ensure(parts: string[]): Promise<string>;
  /** What is at `name` in folder `dir`, never through a link, beneath DIR (Folders.look). */
  look(dir: string, name: string): Promise<Looked | null>;
  /** Opens the regular file `name` in folder `dir` for reading, never through a link (Folders.openFile). */
  openFile(dir: string, name: string): Promise<FileReader | null>;
  /** Called while reading a file to compare it: keeps the sender from timing out (NOOP, sync). */
  keepAlive?: () => Promise<void>;
  limits: ServerLimits;
  onConflict: ConflictPolicy;
  /** The session's digest, which a partial's prefix is read with. */
  digest: Digest;
  /** The sender takes "resume": its files of several frames are staged as partials. */
  resumable: boolean;
  /** The sender takes "sync": an unchanged file's skip says so (`unchanged`, §9.3). */
  sync?: boolean;
  /** Both sides named "text": text entries are taken (PROTOCOL.md §5.15). Default false. */
  text?: boolean;
  /** When the transfer this session resumes first started (what it stored is "have"), or null. */
  resumedSince: TransferStart | null;
  /** Where accepted entries wait for their data. */
  queue: AcceptedQueue;
  bytes: SessionBytes;
  tally: Tally;
}

/** An ANNOUNCE as decoded: its entries unchecked. */
export type Announced = Omit<Announce, "entries"> & { entries: unknown[] };

/** Longest absolute path the receiving OS takes (PATH_MAX less its NUL). */
const PLATFORM_PATH_MAX = Deno.build.os === "darwin" ? 1023 : 4095;
const encoder = new TextEncoder();

export class Planner {
  #nextBatch = 0;
  #lastId = -1;
  #entries = 0;
  /** Where `update` reads a file it compares by content (`#unchanged`). */
  #readBuffer: Uint8Array | null = null;
  /** The sender's totals as last told (ANNOUNCE `totals`). */
  #totals: { files: number; bytes: number | null } | null = null;

  constructor(readonly opts: PlannerOptions) {}

  /** Checks one ANNOUNCE batch; returns its PLAN. */
  async plan({ batch, entries, totals }: Announced): Promise<Plan> {
    const { limits, queue, session, report, tally } = this.opts;
    if (batch !== this.#nextBatch) {
      throw new ProtocolError("bad-sequence", `expected batch ${this.#nextBatch}, got ${batch}`);
    }
    this.#nextBatch++;
    if (
      totals !== undefined &&
      (totals.files !== this.#totals?.files || totals.bytes !== this.#totals?.bytes)
    ) {
      this.#totals = totals;
      report({ type: "totals", session, ...totals });
    }
    if (entries.length > limits.maxBatchEntries) {
      throw new ProtocolError(
        "too-many-entries",
        `ANNOUNCE has ${entries.length} entries; this receiver takes ${limits.maxBatchEntries}`,
      );
    }
    if (queue.pending + entries.length > (ANNOUNCE_WINDOW + 1) * limits.maxBatchEntries) {
      throw new ProtocolError("too-many-entries", "too many entries announced ahead of their data");
    }
    const free = await this.opts.inbox.freeBytes();
    const decisions: Decision[] = [];
    for (const raw of entries) {
      const id = entryId(raw);
      if (id <= this.#lastId) {
        throw new ProtocolError("bad-sequence", `entry id ${id} does not increase`);
      }
      this.#lastId = id;
      const check = checkEntry(raw);
      if (check.ok && tally.awaitsResend) tally.announced(check.entry);
      const decision = check.ok
        ? await this.#decide(check.entry, free)
        : { id: check.id, action: "refuse" as const, reason: check.reason };
      decisions.push(decision);
      // An unchanged file is reported as such (`unchanged`), not as a skip.
      const unchanged = decision.action === "skip" && decision.reason === UNCHANGED;
      if ((decision.action === "skip" && !unchanged) || decision.action === "refuse") {
        const path = (raw as { kind?: unknown }).kind === "text"
          ? "(text)"
          : typeof (raw as { path?: unknown }).path === "string"
          ? (raw as { path: string }).path
          : "(no name)";
        report({
          type: "refused",
          session,
          path,
          reason: `${decision.action === "skip" ? "skipped" : "refused"}: ${decision.reason}`,
        });
        if (decision.action === "refuse") tally.fail();
      }
    }
    return { batch, decisions };
  }

  async #decide(entry: Entry, free: number | null): Promise<Decision> {
    const { inbox, onConflict, limits, queue } = this.opts;
    if (++this.#entries > limits.maxEntries) {
      return refusal(
        entry.id,
        `this receiver takes at most ${limits.maxEntries} entries per session`,
      );
    }
    if (entry.kind === "text") {
      // A message for the person here: no name, nothing stored, no conflict policy (§5.15).
      if (this.opts.text !== true) return refusal(entry.id, "kind must be 'file' or 'dir'");
      queue.push({ entry, dir: "", name: "", partial: null, offer: null, reserved: 0 });
      return { id: entry.id, action: "accept" };
    }
    try {
      const parts = inbox.parse(entry.path, limits);
      if (entry.kind === "dir") {
        const dir = await this.opts.ensure(parts);
        queue.push({
          entry,
          dir,
          name: "",
          partial: null,
          offer: null,
          reserved: 0,
          replaces: false,
        });
        return { id: entry.id, action: "accept" };
      }
      if (entry.size !== null && entry.size > limits.maxSize) {
        return refusal(entry.id, `larger than the receiver's limit of ${limits.maxSize} bytes`);
      }
      if (!this.opts.bytes.fits(entry.size ?? 0)) {
        return refusal(entry.id, this.opts.bytes.overLimit);
      }
      const dir = await this.opts.ensure(parts.slice(0, -1));
      const name = parts[parts.length - 1]!;
      const target = childPath(dir, name);
      // No UTF-16 unit takes more than 3 UTF-8 bytes: most paths need no encoding to check.
      if (
        target.length * 3 > PLATFORM_PATH_MAX && encoder.encode(target).length > PLATFORM_PATH_MAX
      ) {
        return refusal(entry.id, "name too long for the receiver's file system");
      }
      const { digest, sync } = this.opts;
      if (
        onConflict === "update" && sync === true && entry.digest !== undefined &&
        entry.digest.length !== digest.length * 2
      ) {
        return refusal(entry.id, `its digest is not a ${digest.name} digest, the session's`);
      }
      const resuming = this.opts.resumedSince !== null;
      // Under "rename" a name in use is found when placing the file; look now only if it matters.
      // Under update, looked up beneath DIR (a folder on the way checked as for a placement):
      // the quick check compares its size and time with the entry's.
      const found = onConflict === "update" ? await this.opts.look(dir, name) : null;
      const existing = onConflict === "update"
        ? found?.kind ?? "none"
        : onConflict === "rename" && !resuming
        ? "none"
        : inbox.existing(target);
      // Under update the file's own check decides (`unchanged`, with --checksum by content):
      // what an earlier session of the transfer stored passes it like any other same file.
      const stored = existing === "file" && resuming && onConflict !== "update"
        ? this.#storedHere(dir, name, entry)
        : null;
      if (stored !== null) {
        this.opts.tally.already++;
        this.opts.report({
          type: "already",
          session: this.opts.session,
          path: entry.path,
          name: [...parts.slice(0, -1), stored].join("/"),
          bytes: entry.size ?? 0,
        });
        return { id: entry.id, action: "have" };
      }
      if (found !== null && found.kind === "file") {
        if (await this.#unchanged(entry, dir, name, found)) {
          await this.#dropPartial(entry);
          this.opts.tally.unchanged++;
          this.opts.report({
            type: "unchanged",
            session: this.opts.session,
            path: entry.path,
            bytes: entry.size ?? 0,
          });
          const skip: Decision = { id: entry.id, action: "skip", reason: UNCHANGED };
          if (this.opts.sync === true) skip.unchanged = true;
          return skip;
        }
      }
      if (existing !== "none" && onConflict !== "rename") {
        // Not taken here: what an interrupted run of it left in a partial is not wanted either.
        if (!replaces(onConflict)) await this.#dropPartial(entry);
        if (onConflict === "skip") {
          return { id: entry.id, action: "skip", reason: "already exists" };
        }
        if (onConflict === "fail") return refusal(entry.id, "already exists on the receiver");
        if (existing === "dir") return refusal(entry.id, "a directory is in the way");
      }
      // A file or a link there (never followed) is replaced when the new one is placed.
      const replacing = onConflict === "update" && (existing === "file" || existing === "other");
      // Only files of several frames are worth resuming; a small file is sent again whole.
      const partial = this.#resumable(entry) ? inbox.claimPartial(entry) : null;
      const held = partial ? await inbox.readPartial(partial, digest, entry.size!) : null;
      const offer = held ? { offset: held.size, hash: held.hash, prefix: held.prefix } : null;
      return this.#accept(entry, dir, name, free, replacing, partial, offer);
    } catch (err) {
      if (err instanceof Refusal) return refusal(entry.id, err.message);
      throw err;
    }
  }

  /**
   * In a resuming session, the name under which this transfer already stored
   * `entry` in `dir` (PROTOCOL.md §7): `name`, or under "rename" one of its
   * numbered copies up to the first free one, holding a regular file of the
   * announced size and mtime that this transfer put there (a file that was
   * there before it started is not one of its copies). Null if none.
   */
  #storedHere(dir: string, name: string, entry: Entry): string | null {
    const start = this.opts.resumedSince!;
    const tries = this.opts.onConflict === "rename" ? MAX_RENAME_TRIES : 0;
    for (let n = 0; n <= tries; n++) {
      const candidate = n === 0 ? name : numberedName(name, n);
      let info: Deno.FileInfo;
      try {
        info = Deno.lstatSync(childPath(dir, candidate));
      } catch {
        return null; // the first free name: no copy was placed beyond it
      }
      if (sameFile(info, entry) && placedSince(info, start)) return candidate;
    }
    return null;
  }

  /**
   * Under `update`, whether the regular file at `target` (`name` in `dir`) is the announced one
   * (PROTOCOL.md §9.3): with the entry's digest, the same size and the same content (read
   * through `openFile`, never through a link); without, rsync's quick check, the same size and
   * mtime to the millisecond. A file of unknown size (streamed) is never unchanged.
   */
  async #unchanged(
    entry: Entry,
    dir: string,
    name: string,
    found: Looked,
  ): Promise<boolean> {
    if (entry.size === null || found.size !== entry.size) return false;
    // A digest counts only from a sender that named sync, as the feature says (§5.4).
    if (entry.digest === undefined || this.opts.sync !== true) {
      // rsync's quick check, to the millisecond (file systems keep other precisions).
      return Math.abs(found.mtimeMs - entry.mtime) < 1;
    }
    const { digest } = this.opts;
    const file = await this.opts.openFile(dir, name);
    if (file === null) return false;
    try {
      const hash = digest.hasher();
      // One buffer for the session's comparisons, made on the first (they run one at a time).
      const buf = this.#readBuffer ??= new Uint8Array(CHECKSUM_READ_BYTES);
      let size = 0;
      for (;;) {
        let n: number | null;
        try {
          n = await file.read(buf);
        } catch {
          return false; // unreadable: replaced with the sender's copy
        }
        if (n === null) break;
        hash.update(buf.subarray(0, n));
        size += n;
        await this.opts.keepAlive?.();
      }
      return size === entry.size && bytesToHex(hash.digest()) === entry.digest;
    } finally {
      file.close();
    }
  }

  /** Whether `entry` is staged as a partial, to resume: a file of several frames, from a resume-capable sender. */
  #resumable(entry: Entry): boolean {
    return this.opts.resumable && entry.size !== null && entry.size > SMALL_FILE_MAX;
  }

  /** Deletes the partial held for a file of a resume-capable sender that will not be stored. */
  async #dropPartial(entry: Entry): Promise<void> {
    if (this.#resumable(entry)) await this.opts.inbox.dropPartial(entry);
  }

  /**
   * Accepts a file, with its claimed partial slot and the resume offer from what that holds:
   * reserves space.
   */
  #accept(
    entry: Entry,
    dir: string,
    name: string,
    free: number | null,
    replacing: boolean,
    partial: HeldPartial | null,
    offer: Resume | null,
  ): Decision {
    const { inbox } = this.opts;
    const need = (entry.size ?? 0) - (offer?.offset ?? 0);
    if (free !== null && need > free - inbox.reserved) {
      if (partial) inbox.releasePartial(partial);
      return {
        id: entry.id,
        action: "refuse",
        reason: `not enough free space on the receiver (needs ${need} bytes, ${
          Math.max(0, free - inbox.reserved)
        } free)`,
      };
    }
    inbox.reserved += need;
    this.opts.bytes.announced += entry.size ?? 0;
    this.opts.queue.push({ entry, dir, name, partial, offer, reserved: need, replaces: replacing });
    if (offer === null) return { id: entry.id, action: "accept", offset: 0 };
    return { id: entry.id, action: "accept", offset: offer.offset, prefix: offer.prefix };
  }
}

/** A refusal of entry `id`, for `reason`. */
function refusal(id: number, reason: string): Decision {
  return { id, action: "refuse", reason };
}

/** The reason of a skip under `update` whose file is the same as the sender's. */
const UNCHANGED = "unchanged";

/** How much of an existing file `update` reads at a time to compare its digest. */
const CHECKSUM_READ_BYTES = 1024 * 1024;

/** The quick check of a resumed transfer: a regular file of the same size and modification time. */
function sameFile(info: Deno.FileInfo, entry: Entry): boolean {
  const mtime = info.mtime?.getTime();
  // File systems keep mtimes at different precisions: within a millisecond is the same.
  return info.isFile && info.size === entry.size && mtime !== undefined &&
    Math.abs(mtime - entry.mtime) < 1;
}
