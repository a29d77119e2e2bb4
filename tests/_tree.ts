/**
 * Folder trees: writing one from a description, and snapshotting one to
 * compare (content digests, sizes, times, modes).
 */
import { createHash } from "node:crypto";
import { dirname, join, relative } from "node:path";

/** A file in a TreeSpec: its content, and optionally its mode and modification time. */
export interface FileSpec {
  data: Uint8Array | string;
  mode?: number;
  /** Seconds (or a Date), as Deno.utime takes them. */
  mtime?: number | Date;
}

/** A folder in a TreeSpec (it may hold nothing), optionally with a modification time. */
export interface DirSpec {
  dir: true;
  mtime?: number | Date;
}

/**
 * A tree to write: each path (relative, with "/") maps to a file's content
 * (bytes or text), a FileSpec, or a DirSpec. Parent folders are made as needed.
 */
export type TreeSpec = Record<string, Uint8Array | string | FileSpec | DirSpec>;

/** Writes `tree` below `root`; returns how many files it wrote and their bytes in all. */
export async function writeTree(
  root: string,
  tree: TreeSpec,
): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  const times: [string, number | Date][] = [];
  await Deno.mkdir(root, { recursive: true });
  for (const [path, value] of Object.entries(tree)) {
    const abs = join(root, path);
    if (typeof value === "object" && "dir" in value) {
      await Deno.mkdir(abs, { recursive: true });
      if (value.mtime !== undefined) times.push([abs, value.mtime]);
      continue;
    }
    const spec: FileSpec = typeof value === "string" || value instanceof Uint8Array
      ? { data: value }
      : value;
    const data = typeof spec.data === "string" ? new TextEncoder().encode(spec.data) : spec.data;
    await Deno.mkdir(dirname(abs), { recursive: true });
    await Deno.writeFile(abs, data);
    if (spec.mode !== undefined) await Deno.chmod(abs, spec.mode);
    if (spec.mtime !== undefined) times.push([abs, spec.mtime]);
    files++;
    bytes += data.length;
  }
  // Last, deepest first: writing into a folder changes its modification time.
  times.sort(([a], [b]) => b.length - a.length);
  for (const [abs, mtime] of times) await Deno.utime(abs, mtime, mtime);
  return { files, bytes };
}

export interface TreeEntry {
  kind: "file" | "dir" | "link";
  /** SHA-256 of a file's content. */
  sha256?: string | undefined;
  size?: number | undefined;
  mtime?: number | undefined;
  mode?: number | undefined;
}

/** Every entry below `root` (relative path → what it is), skipping ferry's staging folder. */
export async function snapshot(
  root: string,
  opts: { includeStaging?: boolean } = {},
): Promise<Record<string, TreeEntry>> {
  const out: Record<string, TreeEntry> = {};
  const visit = async (dir: string) => {
    for await (const e of Deno.readDir(dir)) {
      const abs = join(dir, e.name);
      const rel = relative(root, abs).split("\\").join("/");
      if (!opts.includeStaging && rel === ".ferry") continue;
      const info = await Deno.lstat(abs);
      if (info.isSymlink) out[rel] = { kind: "link" };
      else if (info.isDirectory) {
        out[rel] = { kind: "dir", mtime: info.mtime?.getTime(), mode: info.mode! & 0o7777 };
        await visit(abs);
      } else {
        const data = await Deno.readFile(abs);
        out[rel] = {
          kind: "file",
          size: data.length,
          sha256: createHash("sha256").update(data).digest("hex"),
          mtime: info.mtime?.getTime(),
          mode: info.mode! & 0o7777,
        };
      }
    }
  };
  await visit(root);
  return out;
}

/** Content only: the kind, size and SHA-256 of every entry (metadata is other tests' business). */
export function contents(
  tree: Record<string, TreeEntry>,
): Record<string, { kind: string; size?: number | undefined; sha?: string | undefined }> {
  return Object.fromEntries(
    Object.entries(tree).map(([path, e]) => [path, { kind: e.kind, size: e.size, sha: e.sha256 }]),
  );
}

/** Paths of the regular files and directories below `root`, sorted. */
export async function listTree(root: string, opts: { includeStaging?: boolean } = {}) {
  return Object.keys(await snapshot(root, opts)).sort();
}
