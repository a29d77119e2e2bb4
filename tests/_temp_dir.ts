/**
 * Temporary folders that remove themselves: `await using dir = await tempDir()`
 * removes the folder, and all in it, when the block ends, whether the test
 * passed or threw, so no run leaves anything behind in the system's temp folder.
 */
import { join } from "node:path";

/** A temporary folder, removed with everything in it when disposed. */
export interface TempDir extends AsyncDisposable {
  /** The folder's absolute path. */
  readonly path: string;
  /** `join(path, ...parts)`. */
  join(...parts: string[]): string;
}

/**
 * A new empty folder in the temp folder (or in `opts.dir`), named `prefix` and
 * a random suffix.
 */
export async function tempDir(
  prefix = "ferry-test-",
  opts: { dir?: string } = {},
): Promise<TempDir> {
  const path = await Deno.makeTempDir({
    prefix,
    ...(opts.dir === undefined ? {} : { dir: opts.dir }),
  });
  return {
    path,
    join: (...parts) => join(path, ...parts),
    async [Symbol.asyncDispose]() {
      await removeTree(path);
    },
  };
}

/**
 * A folder in memory where the system has one (/dev/shm), so that large test
 * files need not touch a disk; else an ordinary temp folder.
 */
export async function memoryTempDir(prefix = "ferry-test-"): Promise<TempDir> {
  try {
    return await tempDir(prefix, { dir: "/dev/shm" });
  } catch {
    return await tempDir(prefix);
  }
}

/**
 * Removes `path` and all below it; gone already is fine. A folder a test made
 * unwritable or unreadable is opened up first, so that it can be removed.
 */
export async function removeTree(path: string): Promise<void> {
  try {
    await Deno.remove(path, { recursive: true });
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return;
    if (!(err instanceof Deno.errors.PermissionDenied)) throw err;
    await openUp(path);
    await Deno.remove(path, { recursive: true });
  }
}

async function openUp(path: string): Promise<void> {
  const info = await Deno.lstat(path).catch(() => null);
  if (info === null || !info.isDirectory) return;
  await Deno.chmod(path, 0o700);
  for await (const entry of Deno.readDir(path)) await openUp(join(path, entry.name));
}
