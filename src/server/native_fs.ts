/**
 * The receiver's file calls made straight into the C library (Linux,
 * through Deno's FFI), for the path where their cost is per call, not per
 * byte: small files (small_file.ts) and giving a staged file its final name.
 *
 * - `renameNoReplace` is renameat2(RENAME_NOREPLACE): one atomic call that
 *   names a file without ever replacing one, where Deno's API needs link +
 *   lstat + unlink for the same promise.
 * - create (O_EXCL), write, futimens, fsync and close cost about half of
 *   what Deno's synchronous calls do here: measured in the receiver on
 *   10,000 files of 4 KiB on tmpfs, 25 µs a file against 47.
 *
 * The library comes from src/native/libc.ts (Linux, with ffi permission for
 * it); without it (other systems, or `deno run` without that permission)
 * `loadNativeFs()` is null and the receiver uses Deno's API, with the same
 * results. Errors are thrown as Deno's API would throw them, so that
 * storageRefusal() reads them the same way.
 */

import {
  AT_FDCWD,
  EEXIST,
  EINTR,
  EINVAL,
  ENOSYS,
  EOPNOTSUPP,
  Errno,
  ERRNO_SYMBOLS,
  O_CLOEXEC,
  O_CREAT,
  O_EXCL,
  O_WRONLY,
  openLibc,
} from "../native/libc.ts";

const SYMBOLS = {
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  futimens: { parameters: ["i32", "buffer"], result: "i32" },
  fsync: { parameters: ["i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  // glibc 2.28 and later (older ones: "unsupported", and placing links instead).
  renameat2: {
    parameters: ["i32", "buffer", "i32", "buffer", "u32"],
    result: "i32",
    optional: true,
  },
  unlink: { parameters: ["buffer"], result: "i32" },
  ...ERRNO_SYMBOLS,
} as const;

type Lib = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

const RENAME_NOREPLACE = 1;

/** Synchronous file calls by path and descriptor; each throws as Deno's API would. */
export class NativeFs {
  readonly #lib: Lib;
  readonly #errno: Errno;
  readonly #times = new BigInt64Array(4);

  constructor(lib: Lib) {
    this.#lib = lib;
    this.#errno = new Errno(lib);
  }

  /** Creates `path`, which must not exist, for writing; `mode` goes through the umask. Returns the descriptor. */
  createExclusive(path: string, mode: number): number {
    const fd = this.#lib.open(
      this.#errno.cString(path),
      O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
      mode,
    );
    if (fd < 0) throw this.#errno.error("open", path);
    return fd;
  }

  /** Writes all of `data` at the descriptor's position. */
  write(fd: number, data: Uint8Array): void {
    for (let done = 0; done < data.length;) {
      const n = Number(this.#lib.write(fd, data.subarray(done), BigInt(data.length - done)));
      if (n < 0) {
        if (this.#errno.get() === EINTR) continue;
        throw this.#errno.error("write");
      }
      if (n === 0) throw new Error("write wrote nothing (os error 5): write");
      done += n;
    }
  }

  /** Sets the access and modification times to `mtimeMs` (milliseconds since the epoch). */
  setTimes(fd: number, mtimeMs: number): void {
    let seconds = Math.floor(mtimeMs / 1000);
    let nanos = Math.round((mtimeMs - seconds * 1000) * 1e6);
    if (nanos >= 1e9) {
      seconds += 1;
      nanos -= 1e9;
    }
    this.#times[0] = this.#times[2] = BigInt(seconds);
    this.#times[1] = this.#times[3] = BigInt(nanos);
    if (this.#lib.futimens(fd, this.#times) !== 0) throw this.#errno.error("futimens");
  }

  fsync(fd: number): void {
    if (this.#lib.fsync(fd) !== 0) throw this.#errno.error("fsync");
  }

  close(fd: number): void {
    if (this.#lib.close(fd) !== 0 && this.#errno.get() !== EINTR) throw this.#errno.error("close");
  }

  /**
   * Gives `from` the name `to`, atomically, unless `to` exists (a file, a
   * directory or a link): "renamed", or "exists". Where nothing happened
   * and the caller should use another way: "unsupported" when this system
   * or file system cannot rename without replacing, "failed" for any other
   * error (another mount, which the kernel reports before a read-only one;
   * a sandbox that refuses the call): the other way gives the error to
   * report, if there is one.
   */
  renameNoReplace(from: string, to: string): "renamed" | "exists" | "unsupported" | "failed" {
    const renameat2 = this.#lib.renameat2;
    if (renameat2 === null) return "unsupported";
    const result = renameat2(
      AT_FDCWD,
      this.#errno.cString(from),
      AT_FDCWD,
      this.#errno.cString(to),
      RENAME_NOREPLACE,
    );
    if (result === 0) return "renamed";
    const errno = this.#errno.get();
    if (errno === EEXIST) return "exists";
    if (errno === EINVAL || errno === ENOSYS || errno === EOPNOTSUPP) return "unsupported";
    return "failed";
  }

  unlink(path: string): void {
    if (this.#lib.unlink(this.#errno.cString(path)) !== 0) throw this.#errno.error("unlink", path);
  }
}

let loaded: NativeFs | null | undefined;

/**
 * The native calls, or null where they are not available (not Linux, no
 * permitted libc). Pass `paths` to look elsewhere (tests; nothing is cached).
 */
export function loadNativeFs(paths?: readonly string[]): NativeFs | null {
  if (paths === undefined) {
    if (loaded === undefined) loaded = load();
    return loaded;
  }
  return load(paths);
}

function load(paths?: readonly string[]): NativeFs | null {
  const lib = openLibc(SYMBOLS, paths);
  return lib === null ? null : new NativeFs(lib);
}
