/**
 * Which of the paths where ferry looks for a native library (libcrypto,
 * libxxhash, the C library) exist on this system: a test of a library
 * runs where one is there, and must then find it loaded.
 */

/** The paths among `paths` that are files here. */
export function presentFiles(paths: readonly string[]): string[] {
  return paths.filter((path) => {
    try {
      return Deno.statSync(path).isFile;
    } catch {
      return false;
    }
  });
}
