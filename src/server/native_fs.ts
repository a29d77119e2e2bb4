/**
 * The receiver's file calls made straight into the C library (Linux,
 * through Deno's FFI), for the path where their cost is per call, not per
 * byte (small files, small_file.ts), and for placing files beneath DIR
 * through folder descriptors (beneath.ts), which Deno's API cannot do.
 *
 * - Every call that names a file takes a folder descriptor and a name in
 *   it (openat, mkdirat, renameat2, linkat, unlinkat, statx), so that what
 *   it acts on is the folder that was opened, never a path that a symbolic
 *   link swapped in meanwhile could send elsewhere. Folders are opened with
 *   O_NOFOLLOW, and statx never follows a link.
 * - `renameNoReplace` is renameat2(RENAME_NOREPLACE): one atomic call that
 *   names a file without ever replacing one, where Deno's API needs link +
 *   lstat + unlink for the same promise.
 * - create (O_EXCL), write, futimens, fsync and close cost about half of
 *   what Deno's synchronous calls do for a small file (docs/PERFORMANCE.md).
 *
 * The library comes from src/native/libc.ts (Linux, with ffi permission for
 * it, glibc 2.28 or later for statx and renameat2); without it (other
 * systems, or `deno run` without that permission) `loadNativeFs()` is null
 * and the receiver uses Deno's API (path_folders.ts). Errors are thrown as
 * Deno's API would throw them, so that storageRefusal() reads them the same
 * way.
 */
import {
  AT_EMPTY_PATH,
  AT_FDCWD,
  AT_SYMLINK_NOFOLLOW,
  cStringIn,
  EEXIST,
  EINTR,
  EINVAL,
  EISDIR,
  ENOENT,
  ENOSYS,
  EOPNOTSUPP,
  Errno,
  ERRNO_SYMBOLS,
  O_CLOEXEC,
  O_CREAT,
  O_DIRECTORY,
  O_EXCL,
  O_NOFOLLOW,
  O_NONBLOCK,
  O_RDONLY,
  O_TMPFILE,
  O_WRONLY,
  openLibc,
} from "../native/libc.ts";

const SYMBOLS = {
  openat: { parameters: ["i32", "buffer", "i32", "u32"], result: "i32" },
  mkdirat: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  /** On the thread pool: a comparison's reads (`update`) leave the other sessions running. */
  read: { parameters: ["i32", "buffer", "usize"], result: "isize", nonblocking: true },
  futimens: { parameters: ["i32", "buffer"], result: "i32" },
  fchmod: { parameters: ["i32", "u32"], result: "i32" },
  fsync: { parameters: ["i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  // statx and renameat2: glibc 2.28 and later (older ones: no native calls, Deno's API instead).
  statx: { parameters: ["i32", "buffer", "i32", "u32", "buffer"], result: "i32" },
  renameat2: { parameters: ["i32", "buffer", "i32", "buffer", "u32"], result: "i32" },
  renameat: { parameters: ["i32", "buffer", "i32", "buffer"], result: "i32" },
  linkat: { parameters: ["i32", "buffer", "i32", "buffer", "i32"], result: "i32" },
  unlinkat: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  ...ERRNO_SYMBOLS,
} as const;

type Lib = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

const RENAME_NOREPLACE = 1;

const STATX_TYPE = 0x1;
const STATX_MTIME = 0x40;
const STATX_INO = 0x100;
const STATX_SIZE = 0x200;
/** struct statx (linux/stat.h, the same on every architecture): where its fields are. */
const STATX_BYTES = 256;
const STX_MODE = 28;
const STX_INO = 32;
const STX_SIZE = 40;
const STX_MTIME_SEC = 112;
const STX_MTIME_NSEC = 120;
const STX_DEV_MAJOR = 136;
const STX_DEV_MINOR = 140;
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

/** The C strings "." and "" (the folder itself; the descriptor itself). */
const HERE = new Uint8Array([0x2e, 0]);
const EMPTY = new Uint8Array([0]);

/** The longest path, with its NUL, that a reused buffer holds (PATH_MAX); a longer one gets its own. */
const PATH_BYTES = 4096;

/** What statx saw at a name, without following a link: its kind and which file it is. */
export class FileId {
  constructor(
    readonly kind: "dir" | "file" | "link" | "other",
    readonly devMajor: number,
    readonly devMinor: number,
    /** The inode number, in two halves (a u64 does not fit a number). */
    readonly inoHigh: number,
    readonly inoLow: number,
  ) {}

  /** The same file (device and inode): a folder renamed is still the same, one replaced is not. */
  same(other: FileId): boolean {
    return this.inoLow === other.inoLow && this.inoHigh === other.inoHigh &&
      this.devMinor === other.devMinor && this.devMajor === other.devMajor;
  }

  /**
   * The same file as one that Deno's stat describes (`dev` is st_dev, which
   * glibc packs from major and minor as gnu_dev_makedev does).
   */
  sameAs(info: { dev: number; ino: number | null }): boolean {
    const major = BigInt(this.devMajor);
    const minor = BigInt(this.devMinor);
    const dev = ((major & 0xfffff000n) << 32n) | ((major & 0xfffn) << 8n) |
      ((minor & 0xffffff00n) << 12n) | (minor & 0xffn);
    const ino = (BigInt(this.inoHigh) << 32n) | BigInt(this.inoLow);
    return info.dev === Number(dev) && info.ino === Number(ino);
  }
}

/** Synchronous file calls by folder descriptor and name; each throws as Deno's API would. */
export class NativeFs {
  readonly #lib: Lib;
  readonly #errno: Errno;
  readonly #times = new BigInt64Array(4);
  readonly #statx = new Uint8Array(STATX_BYTES);
  readonly #view = new DataView(this.#statx.buffer);
  /** Two reused buffers for the C strings of a call (a rename takes two). */
  readonly #paths = [new Uint8Array(PATH_BYTES), new Uint8Array(PATH_BYTES)] as const;

  constructor(lib: Lib) {
    this.#lib = lib;
    this.#errno = new Errno(lib);
  }

  /**
   * Creates `name` in folder `dir` (or the path `name`, by default), which
   * must not exist, for writing; `mode` goes through the umask. A link at
   * `name` counts as existing (O_EXCL). Returns the descriptor.
   */
  createExclusive(name: string, mode: number, dir = AT_FDCWD): number {
    const path = this.#cString(name, 0);
    for (;;) {
      const fd = this.#lib.openat(dir, path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
      if (fd >= 0) return fd;
      const errno = this.#errno.get();
      if (errno !== EINTR) throw this.#errno.error("open", name, errno);
    }
  }

  /**
   * Creates an unnamed file in folder `dir` for writing (O_TMPFILE), with
   * `mode` through the umask: it has no name until `linkUnnamed` gives it
   * one, and it vanishes when closed without one (or when the process dies).
   * Null where the file system or the kernel has no unnamed files
   * (EOPNOTSUPP, EISDIR, EINVAL); any other failure throws.
   */
  createUnnamed(mode: number, dir: number): number | null {
    for (;;) {
      const fd = this.#lib.openat(dir, HERE, O_TMPFILE | O_WRONLY | O_CLOEXEC, mode);
      if (fd >= 0) return fd;
      const errno = this.#errno.get();
      if (errno === EOPNOTSUPP || errno === EISDIR || errno === EINVAL) return null;
      if (errno !== EINTR) throw this.#errno.error("open", undefined, errno);
    }
  }

  /**
   * Gives the unnamed file open at `fd` (from `createUnnamed`) the name `to`
   * in folder `toDir`, never replacing anything there: true, or false if
   * `to` exists (linkat with AT_EMPTY_PATH, which needs Linux 6.10 or the
   * CAP_DAC_READ_SEARCH capability before it: ENOENT otherwise).
   */
  linkUnnamed(fd: number, to: string, toDir: number): boolean {
    const result = this.#lib.linkat(fd, EMPTY, toDir, this.#cString(to, 1), AT_EMPTY_PATH);
    if (result === 0) return true;
    const errno = this.#errno.get();
    if (errno === EEXIST) return false;
    throw this.#errno.error("link", to, errno);
  }

  /**
   * Opens folder `name` in folder `dir` (a path, with AT_FDCWD) for
   * reading, never through a symbolic link: a link there fails with ELOOP
   * (an Error "(os error 40)"), a file with NotADirectory.
   */
  openFolder(name: string, dir = AT_FDCWD): number {
    const path = this.#cString(name, 0);
    for (;;) {
      const fd = this.#lib.openat(dir, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
      if (fd >= 0) return fd;
      const errno = this.#errno.get();
      if (errno !== EINTR) throw this.#errno.error("open", name, errno);
    }
  }

  /**
   * `openFolder`, but null where nothing has the name (ENOENT): a folder about to be made is
   * looked for without building an error (its message, its stack) for every new folder.
   */
  openFolderIfAny(name: string, dir: number): number | null {
    const path = this.#cString(name, 0);
    for (;;) {
      const fd = this.#lib.openat(dir, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
      if (fd >= 0) return fd;
      const errno = this.#errno.get();
      if (errno === ENOENT) return null;
      if (errno !== EINTR) throw this.#errno.error("open", name, errno);
    }
  }

  /**
   * Opens the regular file `name` in folder `dir` for reading, or null if no regular file is
   * there. Never through a link (O_NOFOLLOW), and a FIFO found there does not block the open
   * (O_NONBLOCK): a name swapped after a check cannot lead out of `dir` or hang the caller.
   */
  openToRead(name: string, dir: number): NativeReader | null {
    const path = this.#errno.cString(name);
    let fd: number;
    for (;;) {
      fd = this.#lib.openat(dir, path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0);
      if (fd >= 0) break;
      const errno = this.#errno.get();
      if (errno !== EINTR) return null;
    }
    let kind;
    try {
      kind = this.identify("", fd)?.kind;
    } catch { /* what was opened cannot be told: not read */ }
    const opened = fd;
    if (kind === "file") return new NativeReader(this.#lib, opened, () => this.close(opened));
    this.close(opened);
    return null;
  }

  /** Creates folder `name` in folder `dir`, with the umask's mode; AlreadyExists if the name is taken. */
  makeFolder(name: string, dir: number): void {
    if (this.#lib.mkdirat(dir, this.#cString(name, 0), 0o777) !== 0) {
      throw this.#errno.error("mkdir", name);
    }
  }

  /**
   * What is at `name` in folder `dir`, without following a link, or null if
   * nothing is; `name` "" is `dir` itself. Also takes `name` as a C string
   * (from `cString`), for callers that ask about the same name often.
   */
  identify(name: string | Uint8Array, dir: number, mask = STATX_TYPE | STATX_INO): FileId | null {
    const path = typeof name === "string" ? this.#cString(name, 0) : name;
    const flags = AT_SYMLINK_NOFOLLOW | (path[0] === 0 ? AT_EMPTY_PATH : 0);
    if (this.#lib.statx(dir, path, flags, mask, this.#statx) !== 0) {
      const errno = this.#errno.get();
      if (errno === ENOENT) return null;
      throw this.#errno.error("statx", typeof name === "string" ? name : undefined, errno);
    }
    const view = this.#view;
    const type = view.getUint16(STX_MODE, true) & S_IFMT;
    const kind = type === S_IFDIR
      ? "dir"
      : type === S_IFREG
      ? "file"
      : type === S_IFLNK
      ? "link"
      : "other";
    return new FileId(
      kind,
      view.getUint32(STX_DEV_MAJOR, true),
      view.getUint32(STX_DEV_MINOR, true),
      view.getUint32(STX_INO + 4, true),
      view.getUint32(STX_INO, true),
    );
  }

  /**
   * Whether the folder at `name` (a C string from `cString`) in folder `dir`, not following a
   * link, is the folder `id` (device and inode): `identify` without making a FileId, for the
   * checks made before every placement. False where nothing or something else is there.
   */
  isFolder(name: Uint8Array, dir: number, id: FileId): boolean {
    if (
      this.#lib.statx(dir, name, AT_SYMLINK_NOFOLLOW, STATX_TYPE | STATX_INO, this.#statx) !== 0
    ) {
      return false;
    }
    const view = this.#view;
    return (view.getUint16(STX_MODE, true) & S_IFMT) === S_IFDIR &&
      view.getUint32(STX_INO, true) === id.inoLow &&
      view.getUint32(STX_INO + 4, true) === id.inoHigh &&
      view.getUint32(STX_DEV_MINOR, true) === id.devMinor &&
      view.getUint32(STX_DEV_MAJOR, true) === id.devMajor;
  }

  /**
   * `s` as a NUL-terminated C string in reused buffer `slot`, valid until the next call that
   * uses that slot (every call here uses it at once and keeps nothing); a string too long for
   * it gets its own copy.
   */
  #cString(s: string, slot: 0 | 1): Uint8Array {
    return cStringIn(this.#paths[slot], s);
  }

  /**
   * `identify`, with the size and the modification time (whole milliseconds since the epoch) of
   * what is at `name` in folder `dir`, without following a link; null if nothing is.
   */
  look(name: string, dir: number): { id: FileId; size: number; mtimeMs: number } | null {
    const id = this.identify(name, dir, STATX_TYPE | STATX_INO | STATX_SIZE | STATX_MTIME);
    if (id === null) return null;
    const view = this.#view;
    const size = Number(view.getBigUint64(STX_SIZE, true));
    const seconds = Number(view.getBigInt64(STX_MTIME_SEC, true));
    const nanos = view.getUint32(STX_MTIME_NSEC, true);
    return { id, size, mtimeMs: seconds * 1000 + Math.floor(nanos / 1e6) };
  }

  /** Writes all of `data` at the descriptor's position. */
  write(fd: number, data: Uint8Array): void {
    for (let done = 0; done < data.length;) {
      const rest = done === 0 ? data : data.subarray(done);
      const n = Number(this.#lib.write(fd, rest, BigInt(rest.length)));
      if (n < 0) {
        if (this.#errno.get() === EINTR) continue;
        throw this.#errno.error("write");
      }
      if (n === 0) {
        throw Object.assign(new Error("write wrote nothing (os error 5): write"), { code: "EIO" });
      }
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

  /** Sets the permission bits of the open file or folder (no umask). */
  setMode(fd: number, mode: number): void {
    if (this.#lib.fchmod(fd, mode) !== 0) throw this.#errno.error("fchmod");
  }

  fsync(fd: number): void {
    if (this.#lib.fsync(fd) !== 0) throw this.#errno.error("fsync");
  }

  close(fd: number): void {
    if (this.#lib.close(fd) !== 0 && this.#errno.get() !== EINTR) throw this.#errno.error("close");
  }

  /**
   * Gives `from` (in folder `fromDir`) the name `to` (in folder `toDir`),
   * atomically, unless `to` exists (a file, a folder or a link): "renamed",
   * or "exists". Where nothing happened and the caller should use another
   * way: "unsupported" when this file system cannot rename without
   * replacing, "failed" for any other error (another mount, which the
   * kernel reports before a read-only one; a sandbox that refuses the
   * call): the other way gives the error to report, if there is one.
   * Without folders, `from` and `to` are paths.
   */
  renameNoReplace(
    from: string,
    to: string,
    fromDir = AT_FDCWD,
    toDir = AT_FDCWD,
  ): "renamed" | "exists" | "unsupported" | "failed" {
    const result = this.#lib.renameat2(
      fromDir,
      this.#cString(from, 0),
      toDir,
      this.#cString(to, 1),
      RENAME_NOREPLACE,
    );
    if (result === 0) return "renamed";
    const errno = this.#errno.get();
    if (errno === EEXIST) return "exists";
    if (errno === EINVAL || errno === ENOSYS || errno === EOPNOTSUPP) return "unsupported";
    return "failed";
  }

  /** Gives `from` (in `fromDir`) the name `to` (in `toDir`), replacing a file there. */
  rename(from: string, to: string, fromDir: number, toDir: number): void {
    const result = this.#lib.renameat(
      fromDir,
      this.#cString(from, 0),
      toDir,
      this.#cString(to, 1),
    );
    if (result !== 0) throw this.#errno.error("rename", to);
  }

  /**
   * Makes `to` (in `toDir`) a new name of `from` (in `fromDir`): true, or
   * false if `to` exists. Never follows a link at `from`.
   */
  link(from: string, to: string, fromDir: number, toDir: number): boolean {
    const result = this.#lib.linkat(
      fromDir,
      this.#cString(from, 0),
      toDir,
      this.#cString(to, 1),
      0,
    );
    if (result === 0) return true;
    const errno = this.#errno.get();
    if (errno === EEXIST) return false;
    throw this.#errno.error("link", to, errno);
  }

  /** Removes the file `name` in folder `dir` (or the path `name`, by default). */
  unlink(name: string, dir = AT_FDCWD): void {
    if (this.#lib.unlinkat(dir, this.#cString(name, 0), 0) !== 0) {
      throw this.#errno.error("unlink", name);
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
    if (loaded === undefined) loaded = load();
    return loaded;
  }
  return load(paths);
}

function load(paths?: readonly string[]): NativeFs | null {
  const lib = openLibc(SYMBOLS, paths);
  if (lib === null) return null;
  // A sandbox may refuse statx (EPERM, where glibc falls back to fstatat only on ENOSYS): then
  // no placement could be checked, so Deno's calls are used instead.
  const probe = new Uint8Array(STATX_BYTES);
  return lib.statx(AT_FDCWD, new TextEncoder().encode("/\0"), 0, STATX_TYPE, probe) === 0
    ? new NativeFs(lib)
    : null;
}

/** A regular file opened by `NativeFs.openToRead`: read on the thread pool, then closed. */
export class NativeReader {
  #closed = false;

  constructor(
    readonly lib: Pick<Lib, "read">,
    readonly fd: number,
    readonly onClose: () => void,
  ) {}

  /** Reads into `buf`: how many bytes, or null at the end; throws if the read failed. */
  async read(buf: Uint8Array): Promise<number | null> {
    if (this.#closed) throw new Error("read after close");
    const n = Number(await this.lib.read(this.fd, buf, BigInt(buf.length)));
    if (n < 0) throw new Error("read failed");
    return n === 0 ? null : n;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.onClose();
  }
}
