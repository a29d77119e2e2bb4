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
 * It loads only the library at one of LIBC_PATHS, on Linux, and only when
 * ffi permission for that path was granted (never prompting); without it
 * (other systems, or `deno run` without that permission) `loadNativeFs()`
 * is null and the receiver uses Deno's API, with the same results.
 *
 * Errors are thrown as the Deno.errors class Deno's API would throw (or an
 * Error whose message ends in "(os error N)", as Deno's does), so that
 * storageRefusal() reads them the same way.
 */

/** Where the GNU C library lives on common Linux systems (Debian and Ubuntu, Fedora and RHEL, Arch). */
export const LIBC_PATHS: readonly string[] = [
  "/usr/lib/x86_64-linux-gnu/libc.so.6",
  "/usr/lib/aarch64-linux-gnu/libc.so.6",
  "/usr/lib64/libc.so.6",
  "/usr/lib/libc.so.6",
];

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
  __errno_location: { parameters: [], result: "pointer" },
  // errno and its text are copied out through the library: Deno's pointer views need ffi
  // permission for every path, and ferry's is scoped to its libraries.
  memcpy: { parameters: ["buffer", "pointer", "usize"], result: "pointer" },
  __xpg_strerror_r: { parameters: ["i32", "buffer", "usize"], result: "i32" },
} as const;

type Lib = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

// Linux's values on x86-64 and arm64 alike (asm-generic).
const O_WRONLY = 0o1;
const O_CREAT = 0o100;
const O_EXCL = 0o200;
const O_CLOEXEC = 0o2000000;
const AT_FDCWD = -100;
const RENAME_NOREPLACE = 1;
const EPERM = 1;
const ENOENT = 2;
const EINTR = 4;
const EACCES = 13;
const EEXIST = 17;
const ENOTDIR = 20;
const EISDIR = 21;
const EINVAL = 22;
const ENOSYS = 38;
const EOPNOTSUPP = 95;

/** Synchronous file calls by path and descriptor; each throws as Deno's API would. */
export class NativeFs {
  readonly #lib: Lib;
  readonly #encoder = new TextEncoder();
  readonly #times = new BigInt64Array(4);
  readonly #errnoCopy = new Int32Array(1);

  constructor(lib: Lib) {
    this.#lib = lib;
  }

  /** Creates `path`, which must not exist, for writing; `mode` goes through the umask. Returns the descriptor. */
  createExclusive(path: string, mode: number): number {
    const fd = this.#lib.open(this.#cString(path), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) throw this.#error("open", path);
    return fd;
  }

  /** Writes all of `data` at the descriptor's position. */
  write(fd: number, data: Uint8Array): void {
    for (let done = 0; done < data.length;) {
      const n = Number(this.#lib.write(fd, data.subarray(done), BigInt(data.length - done)));
      if (n < 0) {
        if (this.#errno() === EINTR) continue;
        throw this.#error("write");
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
    if (this.#lib.futimens(fd, this.#times) !== 0) throw this.#error("futimens");
  }

  fsync(fd: number): void {
    if (this.#lib.fsync(fd) !== 0) throw this.#error("fsync");
  }

  close(fd: number): void {
    if (this.#lib.close(fd) !== 0 && this.#errno() !== EINTR) throw this.#error("close");
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
      this.#cString(from),
      AT_FDCWD,
      this.#cString(to),
      RENAME_NOREPLACE,
    );
    if (result === 0) return "renamed";
    const errno = this.#errno();
    if (errno === EEXIST) return "exists";
    if (errno === EINVAL || errno === ENOSYS || errno === EOPNOTSUPP) return "unsupported";
    return "failed";
  }

  unlink(path: string): void {
    if (this.#lib.unlink(this.#cString(path)) !== 0) throw this.#error("unlink", path);
  }

  /** A NUL-terminated copy (names were checked: they hold no NUL). */
  #cString(s: string): Uint8Array {
    return this.#encoder.encode(`${s}\0`);
  }

  #errno(): number {
    this.#lib.memcpy(this.#errnoCopy, this.#lib.__errno_location(), 4n);
    return this.#errnoCopy[0];
  }

  #error(call: string, path?: string, errno = this.#errno()): Error {
    const text = new Uint8Array(256);
    const reason = this.#lib.__xpg_strerror_r(errno, text, BigInt(text.length)) === 0
      ? new TextDecoder().decode(text.subarray(0, text.indexOf(0)))
      : "unknown error";
    const message = `${reason} (os error ${errno}): ${call}${
      path === undefined ? "" : ` '${path}'`
    }`;
    switch (errno) {
      case EEXIST:
        return new Deno.errors.AlreadyExists(message);
      case ENOENT:
        return new Deno.errors.NotFound(message);
      case EACCES:
      case EPERM:
        return new Deno.errors.PermissionDenied(message);
      case ENOTDIR:
        return new Deno.errors.NotADirectory(message);
      case EISDIR:
        return new Deno.errors.IsADirectory(message);
      default:
        return new Error(message);
    }
  }
}

let loaded: NativeFs | null | undefined;

/**
 * The native calls, or null where they are not available (not Linux, no
 * permitted libc). Pass `paths` to look elsewhere (tests; nothing is cached).
 */
export function loadNativeFs(paths?: readonly string[]): NativeFs | null {
  if (paths === undefined) {
    if (loaded === undefined) loaded = load(LIBC_PATHS);
    return loaded;
  }
  return load(paths);
}

function load(paths: readonly string[]): NativeFs | null {
  if (Deno.build.os !== "linux" || typeof Deno.dlopen !== "function") return null;
  for (const path of paths) {
    try {
      if (Deno.permissions.querySync({ name: "ffi", path }).state !== "granted") continue;
      return new NativeFs(Deno.dlopen(path, SYMBOLS).symbols);
    } catch {
      // Not there, or a C library without these symbols (musl has no renameat2): the next.
    }
  }
  return null;
}
