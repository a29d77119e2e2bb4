/**
 * Loading a native library only where ffi permission covers it: the one way
 * ferry opens libcrypto (libcrypto.ts) and the C library (libc.ts).
 */

/**
 * `symbols` from the library at the first of `paths` that ffi permission
 * covers (queried, never prompted) and that loads with all of them; null
 * when none does.
 */
export function dlopenPermitted<S extends Deno.ForeignLibraryInterface>(
  paths: readonly string[],
  symbols: S,
): Deno.DynamicLibrary<S>["symbols"] | null {
  if (typeof Deno.dlopen !== "function") return null;
  for (const path of paths) {
    try {
      if (Deno.permissions.querySync({ name: "ffi", path }).state !== "granted") continue;
      return Deno.dlopen(path, symbols).symbols;
    } catch {
      // Not there, or without one of the symbols: the next.
    }
  }
  return null;
}
