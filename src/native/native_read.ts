/**
 * Reads of small files and listings of folders made straight into the C
 * library (Linux, through libc.ts): openat, read, getdents64, statx and
 * close, where Deno's open and stat cost most of a small file's time on the
 * sending side (docs/PERFORMANCE.md). The sender reads and walks with it;
 * the receiver lists what it holds for a sync (src/server/listing_walk.ts).
 *
 * `loadNativeReader()` is null where the library or its permission is
 * missing, and the sender uses Deno's API. Errors are thrown as Deno's API
 * would throw them.
 */
import {
  AT_EMPTY_PATH,
  AT_FDCWD,
  AT_SYMLINK_NOFOLLOW,
  cStringIn,
  EINTR,
  ELOOP,
  Errno,
  ERRNO_SYMBOLS,
  O_CLOEXEC,
  O_DIRECTORY,
  O_NOFOLLOW,
  O_RDONLY,
  openLibc,
} from "./libc.ts";

const SYMBOLS = {
  openat: { parameters: ["i32", "buffer", "i32", "u32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  // glibc 2.28 and later; without it, no native reader.
  statx: { parameters: ["i32", "buffer", "i32", "u32", "buffer"], result: "i32" },
  ...ERRNO_SYMBOLS,
} as const;

type Lib = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** The walk's listing of folders (glibc 2.30 and later; without it, Deno's readDir). */
const LIST_SYMBOLS = {
  getdents64: { parameters: ["i32", "buffer", "usize"], result: "isize" },
} as const;

type ListLib = Deno.DynamicLibrary<typeof LIST_SYMBOLS>["symbols"];

/** What the walk needs of an entry's status (lstat: a link is itself). */
export interface Listed {
  kind: "file" | "dir" | "link" | "other";
  size: number;
  /** Milliseconds since the epoch, truncated toward zero (as Deno's mtime). */
  mtime: number;
  /** Permission bits (0o7777). */
  mode: number;
}

/** A folder's entry from `NativeReader.list`: its name, and whether d_type says it is a folder. */
export interface Dirent {
  name: string;
  /** True or false where the file system gives the type in the listing, null where it does not. */
  isDirectory: boolean | null;
  /** False for a name that is not UTF-8 (`name` then has U+FFFD in its place, as Deno lists it). */
  utf8?: boolean;
}

/** Paths up to PATH_MAX (4096 bytes with its NUL) go through one reused buffer. */
const PATH_BYTES = 4096;
/** A folder's names are read this many bytes of records at a time (getdents64). */
const LIST_BUFFER_BYTES = 32 * 1024;
const LIST_BUFFER_LENGTH = BigInt(LIST_BUFFER_BYTES);
const DT_UNKNOWN = 0;
const DT_DIR = 4;
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const STATX_TYPE = 0x1;
const STATX_MODE = 0x2;
const STX_MODE = 28;

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
  readonly #list: ListLib | null;
  readonly #errno: Errno;
  readonly #empty = new Uint8Array(1);
  readonly #statx = new Uint8Array(STATX_BYTES);
  readonly #view = new DataView(this.#statx.buffer);
  readonly #names = new TextDecoder("utf-8", { fatal: true });
  readonly #lossy = new TextDecoder();
  #dents: Uint8Array | null = null;
  /** An ASCII name's bytes, for `#ascii` (a name is at most 255 bytes). */
  readonly #codes: number[] = [];
  /** Where a path becomes a C string for one call (no allocation per file). */
  readonly #path = new Uint8Array(PATH_BYTES);
  /** The last read's length, and as the BigInt the call takes (small files are mostly alike). */
  #readLength = 0;
  #readCount = 0n;

  constructor(lib: Lib, list: ListLib | null = null) {
    this.#lib = lib;
    this.#list = list;
    this.#errno = new Errno(lib);
  }

  /**
   * `path` as a NUL-terminated C string, valid until the next call of this
   * reader (each call that takes one uses it at once, and keeps nothing).
   */
  #cString(path: string): Uint8Array {
    return cStringIn(this.#path, path);
  }

  /** Whether folders can be listed here (`openFolder`, `list`, `lstatAt`). */
  get lists(): boolean {
    return this.#list !== null;
  }

  /**
   * Opens folder `path` to list it, never through a symbolic link at its
   * last name (the walk found a folder there: a link now fails with
   * ENOTDIR, which O_DIRECTORY and O_NOFOLLOW give together).
   */
  openFolder(path: string): number {
    return this.openFolderIn(AT_FDCWD, path, path);
  }

  /** Opens folder `name` in open folder `dir` to list it, as `openFolder` does (`path` for errors). */
  openFolderIn(dir: number, name: string, path: string): number {
    const cName = this.#cString(name);
    for (;;) {
      const fd = this.#lib.openat(dir, cName, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
      if (fd >= 0) return fd;
      const errno = this.#errno.get();
      if (errno !== EINTR) throw this.#errno.error("open", path, errno);
    }
  }

  /**
   * The next entries of open folder `fd` (without "." and ".."), as many as
   * one read of the listing holds; empty only at its end. `bytes` is how much
   * of the listing one read may take (tests make it small).
   *
   * A read can hold no entry but "." and "..": the kernel ends a read early
   * once it has given one entry and a signal is pending (a profiler's, a
   * terminal's). That is not the end, so the next read follows.
   */
  list(fd: number, bytes: number = LIST_BUFFER_BYTES): Dirent[] {
    const buf = this.#dents ??= new Uint8Array(LIST_BUFFER_BYTES);
    const count = bytes === LIST_BUFFER_BYTES
      ? LIST_BUFFER_LENGTH
      : BigInt(Math.min(bytes, LIST_BUFFER_BYTES));
    const out: Dirent[] = [];
    while (out.length === 0) {
      let n: number;
      for (;;) {
        n = Number(this.#list!.getdents64(fd, buf, count));
        if (n >= 0) break;
        if (this.#errno.get() !== EINTR) throw this.#errno.error("getdents64");
      }
      if (n === 0) break; // the end
      this.#parse(buf, n, out);
    }
    return out;
  }

  /** The entries of `buf[0, n)`, a read of getdents64, into `out`. */
  #parse(buf: Uint8Array, n: number, out: Dirent[]): void {
    // struct linux_dirent64: d_ino u64, d_off i64, d_reclen u16, d_type u8, d_name (NUL-ended).
    for (let at = 0; at < n;) {
      const reclen = buf[at + 16]! | (buf[at + 17]! << 8);
      const type = buf[at + 18]!;
      const start = at + 19;
      const end = buf.indexOf(0, start);
      at += reclen;
      if (reclen === 0 || end < 0 || end > at) throw new Error("getdents64: a malformed record");
      // "." and ".."
      if (
        buf[start] === 0x2e && (end === start + 1 || (buf[start + 1] === 0x2e && end === start + 2))
      ) {
        continue;
      }
      const isDirectory = type === DT_UNKNOWN ? null : type === DT_DIR;
      const ascii = this.#ascii(buf, start, end);
      if (ascii !== null) {
        out.push({ name: ascii, isDirectory });
        continue;
      }
      const bytes = buf.subarray(start, end);
      try {
        out.push({ name: this.#names.decode(bytes), isDirectory });
      } catch {
        out.push({ name: this.#lossy.decode(bytes), isDirectory, utf8: false });
      }
    }
  }

  /**
   * `buf[start, end)` as a string if it is ASCII (most names), else null:
   * made in place, where a TextDecoder call is a trip into Deno's runtime.
   */
  #ascii(buf: Uint8Array, start: number, end: number): string | null {
    const codes = this.#codes;
    codes.length = 0;
    for (let at = start; at < end; at++) {
      const c = buf[at]!;
      if (c >= 0x80) return null;
      codes.push(c);
    }
    return String.fromCharCode.apply(null, codes);
  }

  /** The status of `name` in open folder `dir`, without following a link. */
  lstatAt(dir: number, name: string, path: string): Listed {
    const result = this.#lib.statx(
      dir,
      this.#cString(name),
      AT_SYMLINK_NOFOLLOW,
      STATX_TYPE | STATX_MODE | STATX_SIZE | STATX_MTIME,
      this.#statx,
    );
    if (result !== 0) throw this.#errno.error("lstat", path);
    const view = this.#view;
    const mode = view.getUint16(STX_MODE, true);
    const type = mode & S_IFMT;
    return {
      kind: type === S_IFREG
        ? "file"
        : type === S_IFDIR
        ? "dir"
        : type === S_IFLNK
        ? "link"
        : "other",
      size: this.#u64(STX_SIZE),
      mtime: this.#mtime(),
      mode: mode & 0o7777,
    };
  }

  /** The unsigned 64-bit field of the last statx at `at` (a BigInt would be an allocation). */
  #u64(at: number): number {
    return this.#view.getUint32(at, true) + this.#view.getUint32(at + 4, true) * 2 ** 32;
  }

  /** The last statx's mtime in whole milliseconds toward zero (see `stat`). */
  #mtime(): number {
    const seconds = this.#view.getUint32(STX_MTIME_SEC, true) +
      this.#view.getInt32(STX_MTIME_SEC + 4, true) * 2 ** 32;
    const nanos = this.#view.getUint32(STX_MTIME_NSEC, true);
    // Whole milliseconds toward zero, in integers: seconds * 1000 + a fraction would round up
    // near the next millisecond at today's times.
    const millis = seconds >= 0 ? Math.floor(nanos / 1e6) : Math.ceil(nanos / 1e6);
    return seconds * 1000 + millis;
  }

  /**
   * Opens `path` for reading. Never through a symbolic link: the walk
   * listed a file there, so a link found now means it was replaced
   * (ELOOP, thrown as a FileChanged).
   */
  open(path: string): number {
    return this.openIn(AT_FDCWD, path, path);
  }

  /**
   * Opens `name` in open folder `dir` for reading (`path` names it in
   * errors), as `open` does: never through a symbolic link.
   */
  openIn(dir: number, name: string, path: string): number {
    const cName = this.#cString(name);
    for (;;) {
      const fd = this.#lib.openat(dir, cName, O_RDONLY | O_CLOEXEC | O_NOFOLLOW, 0);
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
      if (into.length !== this.#readLength) {
        this.#readLength = into.length;
        this.#readCount = BigInt(into.length);
      }
      const n = Number(this.#lib.read(fd, into, this.#readCount));
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
    const size = this.#u64(STX_SIZE);
    return { size, mtime: this.#mtime() };
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
  if (lib.statx(AT_FDCWD, new TextEncoder().encode("/\0"), 0, STATX_MTIME, probe) !== 0) {
    return null;
  }
  return new NativeReader(lib, openLibc(LIST_SYMBOLS, paths));
}
