/**
 * What a session sees of DIR's folders: it makes sure the folders of the
 * names it accepts exist, places verified files in them, sets the metadata
 * of the folders it created, and fsyncs the folders whose entries changed.
 *
 * Nothing may be written outside DIR, even while a local user changes DIR
 * underneath: a folder checked when its batch was announced may be a
 * symbolic link by the time its file's data has arrived. So placing never
 * trusts that earlier check:
 *
 * - on Linux with the C library (beneath.ts), folders are opened without
 *   following links, from a descriptor of DIR, and kept open; a file is
 *   named by renameat2 between the staging folder's descriptor and its
 *   folder's, right after checking (or at most a millisecond after, in a run
 *   of files in one folder) that the folder is still the one at its name
 *   beneath DIR;
 * - elsewhere (path_folders.ts), every folder on the path is checked again
 *   right before placing, and the placed file's folder is checked to be
 *   beneath DIR right after: if it is not, the file is removed again.
 *
 * open_folders.ts picks one. Either way a folder found replaced refuses that one file (a Refusal with
 * a reason from inbox.ts's `replacedReason`), and the session goes on.
 */
import type { ConflictPolicy, Existing, Inbox } from "./inbox.ts";

/** What `Folders.look` found at a name. */
export interface Looked {
  kind: Existing;
  size: number;
  /** Modification time, whole milliseconds since the epoch. */
  mtimeMs: number;
}

/** A file opened to read (`Folders.openFile`): Deno.FsFile, or the C library's. */
export interface FileReader {
  read(buf: Uint8Array): Promise<number | null>;
  close(): void;
}

export interface Folders {
  readonly inbox: Inbox;

  /**
   * Makes sure `parts` exists as a folder beneath DIR, creating what is
   * missing, one component at a time, refusing links and files in the way.
   * Adds each folder it creates to `created`. Returns its absolute path,
   * which names it to the calls below.
   */
  ensure(parts: string[], created?: Set<string>): Promise<string>;

  /**
   * Gives a verified, synced staged file `temp` (in DIR/.ferry) its final
   * name in folder `dir` (from `ensure`) according to `policy`. Returns the
   * name used, or null when it was skipped because the name is taken.
   */
  place(temp: string, dir: string, name: string, policy: ConflictPolicy): Promise<string | null>;

  /**
   * `place`, done at once where that needs no wait (on Linux, `dir`'s folder is open already):
   * the name used, or null when skipped. Undefined when it would have to wait: then `place`.
   * A small file's placement thus takes no promise (docs/PERFORMANCE.md).
   */
  placeNow?(
    temp: string,
    dir: string,
    name: string,
    policy: ConflictPolicy,
  ): string | null | undefined;

  /**
   * What is at `name` in folder `dir` (from `ensure`), without following a link, in a folder
   * still beneath DIR (checked as before a placement, on Linux at most CHECK_STANDS_MS before;
   * a Refusal if it was replaced): its kind,
   * and a file's size and modification time (ms). Null if nothing is there.
   */
  look(dir: string, name: string): Promise<Looked | null>;

  /**
   * Opens the regular file `name` in folder `dir` (from `ensure`) for reading, to compare its
   * content (`update` with a digest, §9.3): null if no regular file is there, or if what
   * opened is not the file at that name beneath DIR (a link is never followed, and a folder on
   * the way must still be the one that was checked).
   */
  openFile(dir: string, name: string): Promise<FileReader | null>;

  /**
   * Refuses a staging file that Deno's API opened at `path` (in
   * DIR/.ferry/tmp or /partial), whose stat is `info`, unless it is the
   * file at that name in ferry's staging folder, reached without a link.
   */
  checkStaged(path: string, info: Deno.FileInfo): void;

  /**
   * Gives folder `dir` (from `ensure`) the sender's mode and modification time; with `mode` null,
   * the time only (the folder keeps its own mode).
   */
  setMetadata(dir: string, mode: number | null, mtimeMs: number): Promise<void>;

  /** How many folders have entries not yet fsynced. */
  readonly dirty: number;

  /** Fsyncs the folders whose entries changed, so that what was placed in them is durable. */
  sync(): Promise<void>;

  /** Lets go of what it holds open (the session ended). */
  close(): void;
}
