/**
 * The sender's reads of small files through the C library (native_read.ts):
 * each file opened by name in its folder, kept open while the files of one
 * folder follow each other (as the walk lists them), read whole into the
 * outgoing buffer, then checked against the listing.
 *
 * Opening by name in an open folder spares the kernel the walk of the whole
 * path for every file. The folder is opened without following a symbolic
 * link at its last component: one found there (or anything but a folder)
 * means it changed since it was listed, and its file is refused as changed.
 * Where the folder cannot be opened for another reason (gone, not
 * permitted), the file is opened by its whole path, which fails as it would
 * have. A file named on the command line is opened by its whole path too:
 * the walk listed no folder of it, and its folder may be reached through a
 * link (a home folder that is one); only a link at its own name is refused. A folder kept open is read from even if it is moved or replaced
 * meanwhile: each file is still the one listed there (size and time checked).
 */
import { FileChanged, type NativeReader } from "../native/native_read.ts";
import type { LocalEntry } from "./walk.ts";

export class SmallReads {
  readonly #native: NativeReader;
  /** The folder open in `#fd` (its absolute path), or null. */
  #folder: string | null = null;
  #fd = -1;

  constructor(native: NativeReader) {
    this.#native = native;
  }

  /**
   * All of `source` into `room`, then the same check as the file sender's
   * `unchanged`. Null when it was read whole and unchanged, else why not;
   * throws what Deno's calls would.
   */
  readWhole(source: string, room: Uint8Array, entry: LocalEntry): string | null {
    const native = this.#native;
    let fd: number;
    try {
      // A file named on the command line (a path without "/") has no folder the walk listed.
      fd = entry.path.includes("/") ? this.#open(source) : native.open(source);
    } catch (err) {
      if (err instanceof FileChanged) return err.message;
      throw err;
    }
    try {
      for (let done = 0; done < room.length;) {
        const n = native.read(fd, done === 0 ? room : room.subarray(done));
        if (n === 0) return "it shrank while being sent";
        done += n;
      }
      const info = native.stat(fd);
      return info.size === entry.size && info.mtime === entry.mtime
        ? null
        : "it changed after it was listed";
    } finally {
      try {
        native.close(fd);
      } catch { /* read-only: what the read found stands */ }
    }
  }

  /** Closes the folder kept open. */
  close(): void {
    if (this.#folder === null) return;
    this.#folder = null;
    try {
      this.#native.close(this.#fd);
    } catch { /* read-only: nothing to lose */ }
  }

  /** Opens absolute path `source`: by name in its folder where it can, else by the whole path. */
  #open(source: string): number {
    const slash = source.lastIndexOf("/");
    if (slash <= 0 || slash === source.length - 1) return this.#native.open(source);
    const folder = this.#folder;
    if (folder === null || folder.length !== slash || !source.startsWith(folder)) {
      this.close();
      const path = source.slice(0, slash);
      try {
        this.#fd = this.#native.openFolder(path);
      } catch (err) {
        // The walk listed a folder there: something else now (a symbolic link) means it changed.
        if (err instanceof Deno.errors.NotADirectory) throw new FileChanged();
        return this.#native.open(source);
      }
      this.#folder = path;
    }
    return this.#native.openIn(this.#fd, source.slice(slash + 1), source);
  }
}
