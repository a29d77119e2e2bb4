/**
 * The path calls the sender's walk makes on the command line's sources:
 * on POSIX systems, written here for the absolute, normalized paths the
 * walk deals in; on Windows, `node:path`'s, loaded only there. Importing
 * `node:path` starts part of Deno's Node compatibility layer, about 20 ms
 * of every send's start (docs/PERFORMANCE.md).
 */

export interface PathCalls {
  /** The absolute, normalized form of `path`, from the working folder. */
  resolve(path: string): string;
  /** The last name in a path from `resolve` ("" for the root). */
  basename(path: string): string;
  /** The folder a path from `resolve` is in (the root's is the root). */
  dirname(path: string): string;
  /** A path from `resolve` and a name in it. */
  join(folder: string, name: string): string;
}

/** The POSIX calls, with `node:path`'s results on the paths the walk gives them. */
export const POSIX_PATH_CALLS: PathCalls = {
  resolve(path) {
    const parts: string[] = [];
    const whole = path.startsWith("/") ? path : `${Deno.cwd()}/${path}`;
    for (const part of whole.split("/")) {
      if (part === "" || part === ".") continue;
      if (part === "..") parts.pop();
      else parts.push(part);
    }
    return `/${parts.join("/")}`;
  },
  basename: (path) => path.slice(path.lastIndexOf("/") + 1),
  dirname(path) {
    const at = path.lastIndexOf("/");
    return at <= 0 ? "/" : path.slice(0, at);
  },
  join: (folder, name) => folder === "/" ? `/${name}` : `${folder}/${name}`,
};

/** The calls for this system. */
export async function pathCalls(): Promise<PathCalls> {
  return Deno.build.os === "windows" ? await import("node:path") : POSIX_PATH_CALLS;
}
