/**
 * The GNU C library through Deno's FFI: where it is, loading it with the
 * calls a caller names, and turning errno into the error Deno's API would
 * throw. The receiver's file calls (src/server/native_fs.ts) and the
 * sender's reads (src/native/native_read.ts) use it, on Linux only.
 *
 * It loads only the library at one of LIBC_PATHS, and only when ffi
 * permission for that path was granted (never prompting); else null, and
 * the callers use Deno's API.
 */

import { dlopenPermitted } from "./dlopen_permitted.ts";

/** Where the GNU C library lives on common Linux systems (Debian and Ubuntu, Fedora and RHEL, Arch). */
export const LIBC_PATHS: readonly string[] = [
  "/usr/lib/x86_64-linux-gnu/libc.so.6",
  "/usr/lib/aarch64-linux-gnu/libc.so.6",
  "/usr/lib64/libc.so.6",
  "/usr/lib/libc.so.6",
];

/**
 * The calls every user of the library needs: errno and its text are copied
 * out through the library, because Deno's pointer views need ffi permission
 * for every path, and ferry's is scoped to its libraries.
 */
export const ERRNO_SYMBOLS = {
  __errno_location: { parameters: [], result: "pointer" },
  memcpy: { parameters: ["buffer", "pointer", "usize"], result: "pointer" },
  __xpg_strerror_r: { parameters: ["i32", "buffer", "usize"], result: "i32" },
} as const;

type ErrnoCalls = Deno.DynamicLibrary<typeof ERRNO_SYMBOLS>["symbols"];

// Linux's values on x86-64 and arm64 alike (asm-generic).
export const O_RDONLY = 0o0;
export const O_WRONLY = 0o1;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_CLOEXEC = 0o2000000;
/** Two of the few open flags that differ between x86-64 and arm64. */
export const O_NOFOLLOW = Deno.build.arch === "aarch64" ? 0o100000 : 0o400000;
export const O_DIRECTORY = Deno.build.arch === "aarch64" ? 0o40000 : 0o200000;
/** Opening a FIFO does not wait for a writer (no effect on a regular file). */
export const O_NONBLOCK = 0o4000;
/** An unnamed file in the folder opened (Linux 3.11+, where the file system has them). */
export const O_TMPFILE = 0o20000000 | O_DIRECTORY;
export const AT_FDCWD = -100;
export const AT_SYMLINK_NOFOLLOW = 0x100;
export const AT_EMPTY_PATH = 0x1000;
export const EPERM = 1;
export const ENOENT = 2;
export const EINTR = 4;
export const EACCES = 13;
export const EEXIST = 17;
export const ENOTDIR = 20;
export const EISDIR = 21;
export const EINVAL = 22;
export const ENOSYS = 38;
export const ELOOP = 40;
export const EOPNOTSUPP = 95;

/**
 * The library at the first of `paths` that ffi permission covers and that
 * has `symbols`, or null (not Linux, nothing permitted, a C library without
 * one of them: musl has no renameat2).
 */
export function openLibc<S extends Deno.ForeignLibraryInterface>(
  symbols: S,
  paths: readonly string[] = LIBC_PATHS,
): Deno.DynamicLibrary<S>["symbols"] | null {
  return Deno.build.os === "linux" ? dlopenPermitted(paths, symbols) : null;
}

/**
 * The `code` Deno's API gives an OS error, by errno (Linux's numbers), for
 * the errnos ferry's calls meet; like Deno's table (libuv's names), it has
 * none for EDQUOT or EFBIG, which callers tell by the message's number.
 */
export const ERRNO_NAMES: Readonly<Record<number, string>> = {
  1: "EPERM",
  2: "ENOENT",
  5: "EIO",
  9: "EBADF",
  13: "EACCES",
  17: "EEXIST",
  18: "EXDEV",
  20: "ENOTDIR",
  21: "EISDIR",
  22: "EINVAL",
  24: "EMFILE",
  28: "ENOSPC",
  30: "EROFS",
  36: "ENAMETOOLONG",
  39: "ENOTEMPTY",
  40: "ELOOP",
  95: "ENOTSUP",
};

/** errno after a failed call, and the error Deno's API would throw for it. */
export class Errno {
  readonly #calls: ErrnoCalls;
  readonly #copy = new Int32Array(1);
  readonly #encoder = new TextEncoder();

  constructor(calls: ErrnoCalls) {
    this.#calls = calls;
  }

  /** The calling thread's errno: read it right after the call that failed. */
  get(): number {
    this.#calls.memcpy(this.#copy, this.#calls.__errno_location(), 4n);
    return this.#copy[0]!;
  }

  /**
   * The error for `errno`: the Deno.errors class Deno's API throws, or an
   * Error, with the `code` Deno gives it (ERRNO_NAMES) and a message that
   * ends in "(os error N)" as Deno's does, so that the same checks read both.
   */
  error(call: string, path?: string, errno = this.get()): Error {
    const err = this.#error(call, path, errno);
    const code = ERRNO_NAMES[errno];
    if (code !== undefined) Object.assign(err, { code });
    return err;
  }

  #error(call: string, path: string | undefined, errno: number): Error {
    const text = new Uint8Array(256);
    const reason = this.#calls.__xpg_strerror_r(errno, text, BigInt(text.length)) === 0
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

  /** A NUL-terminated copy of a path (ferry's paths hold no NUL: names are checked). */
  cString(s: string): Uint8Array {
    return this.#encoder.encode(`${s}\0`);
  }
}

const ENCODER = new TextEncoder();

/**
 * `s` as a NUL-terminated C string in `buf`, which the caller reuses for one
 * call at a time; a fresh copy where it does not fit. Most names are ASCII
 * and short: copied by hand, without encodeInto's result object a call.
 */
export function cStringIn(buf: Uint8Array, s: string): Uint8Array {
  if (s.length < buf.length) {
    let i = 0;
    for (; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      buf[i] = c;
    }
    if (i === s.length) {
      buf[i] = 0;
      return buf;
    }
  }
  const { read, written } = ENCODER.encodeInto(s, buf);
  if (read < s.length || written >= buf.length) return ENCODER.encode(`${s}\0`);
  buf[written] = 0;
  return buf;
}
