/**
 * The sender's mode and mtime for the directories this transfer created (PROTOCOL.md §9.4),
 * set when a directory's entry reaches the head of the queue: it is announced after its
 * contents, so nothing written into it later changes its mtime again. Only directories this
 * transfer created get them: those made in this session, or, when resuming, in an earlier
 * session of the same transfer. An existing directory merged into is left as is.
 */
import type { Accepted } from "./accepted.ts";
import type { Folders } from "./folders.ts";
import type { TransferStart } from "./inbox.ts";
import { KEPT_MODE_BITS } from "./incoming_file.ts";

export class FolderMetadata {
  /** Directories this session created, until their own entry sets their metadata. */
  readonly created = new Set<string>();

  constructor(
    readonly folders: Folders,
    /** When the transfer this session resumes first started, or null. */
    readonly resumedSince: TransferStart | null,
    /**
     * A sync (`update`): a directory that was there already gets the sender's mtime too, as
     * rsync -a gives it, but keeps its own mode (PROTOCOL.md §9.4).
     */
    readonly timesOfExisting = false,
  ) {}

  /**
   * Gives `item`'s directory the sender's mode and mtime if this transfer created it; under a
   * sync, an existing one the mtime only.
   */
  async apply(item: Accepted): Promise<void> {
    const ours = this.created.delete(item.dir) || await this.#bornInTransfer(item.dir);
    if (!ours && !this.timesOfExisting) return;
    try {
      const mode = ours ? (item.entry.mode & KEPT_MODE_BITS) | 0o700 : null;
      await this.folders.setMetadata(item.dir, mode, item.entry.mtime);
    } catch { /* metadata of a directory is best effort */ }
  }

  /** Whether `dir` was created by an earlier session of the transfer this one resumes. */
  async #bornInTransfer(dir: string): Promise<boolean> {
    if (this.resumedSince === null) return false;
    const born = (await Deno.lstat(dir).catch(() => null))?.birthtime?.getTime();
    return born !== undefined && born >= this.resumedSince.since - 1000;
  }
}
