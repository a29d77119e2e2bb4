/**
 * The sender's reads of small files made straight into the C library
 * (Linux, through src/native/libc.ts): open, read, statx and close, where
 * Deno's open and stat cost most of a small file's time on the sending side
 * (docs/PERFORMANCE.md).
 *
 * `loadNativeReader()` is null where the library or its permission is
 * missing, and the sender uses Deno's API. Errors are thrown as Deno's API
 * would throw them.
 */
import {
  AT_EMPTY_PATH,
  AT_FDCWD,
  EINTR,
  ELOOP,
  Errno,
  ERRNO_SYMBOLS,
  O_CLOEXEC,
  O_NOFOLLOW,
  O_RDONLY,
  openLibc,
} from "../native/libc.ts";

const SYMBOLS = {
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  // glibc 2.28 and later; without it, no native reader.
  statx: { parameters: ["i32", "buffer", "i32", "u32", "buffer"], result: "i32" },
  ...ERRNO_SYMBOLS,
} as const;

type Lib = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

const STATX_MTIME = 0x40;
const STATX_SIZE = 0x200;
/** struct statx (linux/stat.h, the same on every architecture): where its fields are. */
const STATX_BYTES = 256;
const STX_SIZE = 40;
const STX_MTIME_SEC = 112;
const STX_MTIME_NSEC = 120;

/** `open` found a symbolic link where the walk listed a file. */
export class FileChanged extends Error {
  constructor() {
    super("it changed after it was listed");
    this.name = "FileChanged";
  }
}

/** Reads of files by descriptor; each throws as Deno's API would. */
export class NativeReader {
  readonly #lib: Lib;
  readonly #errno: Errno;
  readonly #empty = new Uint8Array(1);
  readonly #statx = new Uint8Array(STATX_BYTES);
  readonly #view = new DataView(this.#statx.buffer);

  constructor(lib: Lib) {
    this.#lib = lib;
    this.#errno = new Errno(lib);
  }

  /**
   * Opens `path` for reading. Never through a symbolic link: the walk
   * listed a file there, so a link found now means it was replaced
   * (ELOOP, thrown as a FileChanged).
   */
  open(path: string): number {
    const name = this.#errno.cString(path);
    for (;;) {
      const fd = this.#lib.open(name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW, 0);
      if (fd >= 0) return fd;
      const errno = this.#errno.get();
      if (errno === EINTR) continue;
      if (errno === ELOOP) throw new FileChanged();
      throw this.#errno.error("open", path, errno);
    }
  }

  /** Reads into `into`: the bytes read, 0 at the end of the file. */
  read(fd: number, into: Uint8Array): number {
    for (;;) {
      const n = Number(this.#lib.read(fd, into, BigInt(into.length)));
      if (n >= 0) return n;
      if (this.#errno.get() !== EINTR) throw this.#errno.error("read");
    }
  }

  /**
   * The size and modification time of the open file, the time in
   * milliseconds as Deno's stat gives it (truncated toward zero).
   */
  stat(fd: number): { size: number; mtime: number } {
    const result = this.#lib.statx(
      fd,
      this.#empty,
      AT_EMPTY_PATH,
      STATX_SIZE | STATX_MTIME,
      this.#statx,
    );
    if (result !== 0) throw this.#errno.error("statx");
    const size = Number(this.#view.getBigUint64(STX_SIZE, true));
    const seconds = Number(this.#view.getBigInt64(STX_MTIME_SEC, true));
    const nanos = this.#view.getUint32(STX_MTIME_NSEC, true);
    // Whole milliseconds toward zero, in integers: seconds * 1000 + a fraction would round up
    // near the next millisecond at today's times.
    const millis = seconds >= 0 ? Math.floor(nanos / 1e6) : Math.ceil(nanos / 1e6);
    return { size, mtime: seconds * 1000 + millis };
  }

  close(fd: number): void {
    if (this.#lib.close(fd) !== 0 && this.#errno.get() !== EINTR) throw this.#errno.error("close");
  }
}

let loaded: NativeReader | null | undefined;

/**
 * The native reads, or null where they are not available (not Linux, no
 * permitted C library with statx). Pass `paths` to look elsewhere (tests;
 * nothing is cached).
 */
export function loadNativeReader(paths?: readonly string[]): NativeReader | null {
  if (paths === undefined) {
    if (loaded === undefined) loaded = load();
    return loaded;
  }
  return load(paths);
}

function load(paths?: readonly string[]): NativeReader | null {
  const lib = openLibc(SYMBOLS, paths);
  if (lib === null) return null;
  // A sandbox may refuse statx (EPERM, where glibc falls back to fstat only on ENOSYS): then
  // every read would fail, so Deno's calls are used instead.
  const probe = new Uint8Array(STATX_BYTES);
  return lib.statx(AT_FDCWD, new TextEncoder().encode("/\0"), 0, STATX_MTIME, probe) === 0
    ? new NativeReader(lib)
    : null;
}
