/**
 * Loading a native library only where ffi permission covers it: the one way
 * ferry opens libcrypto (libcrypto.ts) and the C library (libc.ts).
 */

/** Write permission for group or others. */
const SHARED_WRITE = 0o022;

/** Our own user id, when the permission to ask is already granted (never prompts); else null. */
function ownUid(): number | null {
  try {
    if (Deno.permissions.querySync({ name: "sys", kind: "uid" }).state !== "granted") return null;
    return Deno.uid();
  } catch {
    return null;
  }
}

/**
 * Whether a library file may be loaded: the file (after following links),
 * the folder it is in and the folder of the path given are each owned by
 * root or by the user running ferry, and writable by nobody else. Loading a
 * library runs its code, so one that another local user can replace (a
 * Homebrew prefix shared between users, a library left group-writable)
 * would run that user's code as ours. On Windows, which has no such modes,
 * the path alone decides.
 */
export function trustedLibrary(path: string, uid: number | null = ownUid()): boolean {
  if (Deno.build.os === "windows") return true;
  try {
    const real = Deno.realPathSync(path);
    for (const item of [real, dirname(real), dirname(path)]) {
      const info = Deno.statSync(item);
      if (info.uid === null || info.mode === null) return false;
      if (info.uid !== 0 && info.uid !== uid) return false;
      if ((info.mode & SHARED_WRITE) !== 0) return false;
    }
    return true;
  } catch {
    return false;
  }
}

function dirname(path: string): string {
  const at = path.lastIndexOf("/");
  return at <= 0 ? "/" : path.slice(0, at);
}

/**
 * `symbols` from the library at the first of `paths` that ffi permission
 * covers (queried, never prompted), that is trusted (`trustedLibrary`) and
 * that loads with all of them but those marked `optional` (null where
 * missing); null when none does.
 */
export function dlopenPermitted<S extends Deno.ForeignLibraryInterface>(
  paths: readonly string[],
  symbols: S,
): Deno.DynamicLibrary<S>["symbols"] | null {
  if (typeof Deno.dlopen !== "function") return null;
  for (const path of paths) {
    try {
      if (Deno.permissions.querySync({ name: "ffi", path }).state !== "granted") continue;
      if (!trustedLibrary(path)) continue;
      return Deno.dlopen(path, symbols).symbols;
    } catch {
      // Not there, or without one of the symbols: the next.
    }
  }
  return null;
}
