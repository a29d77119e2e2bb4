/**
 * The data sets: described first (sizes and paths, the mixed tree from a
 * seeded generator so it has the same shape every time), written with random
 * bytes, and checked in each run's destination.
 */
import { join } from "node:path";
import type { WorkloadName } from "./options.ts";
import { errorText, Interrupted, isInterrupted } from "./processes.ts";

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

export interface FileSpec {
  /** Relative to the source folder; the first component is the workload's entry. */
  path: string;
  size: number;
}

export interface Workload {
  name: WorkloadName;
  /** What is sent: a file or folder directly inside the source folder. */
  entry: string;
  files: FileSpec[];
  bytes: number;
  description: string;
  /** Many files: runs stay until the phase ends (deleting thousands right away is slow on this disk). */
  keepRuns: boolean;
}

export function makeWorkload(name: WorkloadName, quick: boolean): Workload {
  switch (name) {
    case "big":
      return describe(name, "big.bin", bigFile(quick ? 8 * MiB : GiB));
    case "small":
    case "resync":
      return describe(name, "small", smallFiles(quick ? 200 : 10_000, quick ? 10 : 100));
    case "mixed":
      return describe(name, "mixed", mixedTree(quick ? 30 : 300, quick ? MiB : 20 * MiB));
    case "huge":
      return describe(name, "huge.bin", [{ path: "huge.bin", size: quick ? 16 * MiB : 4 * GiB }]);
    case "many":
      return describe(name, "many", manyFiles(quick ? 500 : 100_000, quick ? 5 : 1000));
  }
}

/** Whether the workload is one file sent by its name (not a folder). */
export function isSingleFile(workload: Workload): boolean {
  return workload.files.length === 1 && workload.files[0]!.path === workload.entry;
}

function describe(name: WorkloadName, entry: string, files: FileSpec[]): Workload {
  const bytes = files.reduce((sum, f) => sum + f.size, 0);
  const sizes = files.length === 1
    ? humanBytes(bytes)
    : `${files.length} files, ${humanBytes(bytes)} in all`;
  return { name, entry, files, bytes, description: sizes, keepRuns: files.length >= 1000 };
}

function bigFile(size: number): FileSpec[] {
  return [{ path: "big.bin", size }];
}

function smallFiles(count: number, folders: number): FileSpec[] {
  const perFolder = Math.ceil(count / folders);
  return Array.from({ length: count }, (_, i) => ({
    path: `small/d${pad(Math.floor(i / perFolder), 3)}/f${pad(i % perFolder, 4)}.bin`,
    size: 4 * KiB,
  }));
}

/** `count` files of 1 KiB in `folders` folders under many/. */
function manyFiles(count: number, folders: number): FileSpec[] {
  const perFolder = Math.ceil(count / folders);
  return Array.from({ length: count }, (_, i) => ({
    path: `many/d${pad(Math.floor(i / perFolder), 4)}/f${pad(i % perFolder, 4)}.bin`,
    size: KiB,
  }));
}

/** `count` files from 1 KiB to `largest`, log-uniform, each 0 to 3 folders below mixed/. */
function mixedTree(count: number, largest: number): FileSpec[] {
  const random = mulberry32(20240607);
  const span = Math.log(largest / KiB);
  return Array.from({ length: count }, (_, i) => {
    const depth = Math.floor(random() * 4);
    const folders = Array.from({ length: depth }, (_, d) => `l${d}-${Math.floor(random() * 4)}`);
    const size = Math.round(KiB * Math.exp(random() * span));
    return { path: ["mixed", ...folders, `file-${pad(i, 4)}.dat`].join("/"), size };
  });
}

/** A small seeded generator: the mixed tree has the same shape every time. */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, "0");
}

function humanBytes(bytes: number): string {
  if (bytes >= GiB) return `${(bytes / GiB).toFixed(bytes % GiB === 0 ? 0 : 2)} GiB`;
  if (bytes >= MiB) return `${(bytes / MiB).toFixed(bytes % MiB === 0 ? 0 : 1)} MiB`;
  return `${(bytes / KiB).toFixed(0)} KiB`;
}

// ---------------------------------------------------------------------------
// Writing the data

/** Writes the workload's files with random (incompressible) bytes under `srcDir`. */
export async function writeWorkload(workload: Workload, srcDir: string): Promise<void> {
  const made = new Set<string>();
  const buffer = new Uint8Array(MiB);
  for (const file of workload.files) {
    if (isInterrupted()) throw new Interrupted(); // Ctrl+C: the clean-up is removing srcDir
    const path = join(srcDir, file.path);
    const dir = path.slice(0, path.lastIndexOf("/"));
    if (!made.has(dir)) {
      await Deno.mkdir(dir, { recursive: true });
      made.add(dir);
    }
    await writeRandomFile(path, file.size, buffer);
  }
}

async function writeRandomFile(path: string, size: number, buffer: Uint8Array): Promise<void> {
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
  for (let done = 0; done < size;) {
    const chunk = buffer.subarray(0, Math.min(buffer.length, size - done));
    fillRandom(chunk);
    for (let written = 0; written < chunk.length;) {
      written += await file.write(chunk.subarray(written));
    }
    done += chunk.length;
  }
}

function fillRandom(bytes: Uint8Array): void {
  for (let at = 0; at < bytes.length; at += 65536) {
    crypto.getRandomValues(bytes.subarray(at, Math.min(bytes.length, at + 65536)));
  }
}

// ---------------------------------------------------------------------------
// Checking a run: file count, total size, and the first bytes of the largest file.

interface TreeStats {
  files: number;
  bytes: number;
}

async function treeStats(path: string): Promise<TreeStats> {
  const info = await Deno.lstat(path);
  if (info.isFile) return { files: 1, bytes: info.size };
  const stats: TreeStats = { files: 0, bytes: 0 };
  if (!info.isDirectory) return stats;
  for await (const entry of Deno.readDir(path)) {
    const sub = await treeStats(join(path, entry.name));
    stats.files += sub.files;
    stats.bytes += sub.bytes;
  }
  return stats;
}

/** Why the copy of `workload` in `destDir` is wrong, or null if it looks right. */
export async function verifyCopy(
  workload: Workload,
  srcDir: string,
  destDir: string,
): Promise<string | null> {
  let got: TreeStats;
  try {
    got = await treeStats(join(destDir, workload.entry));
  } catch (err) {
    return `destination missing: ${errorText(err)}`;
  }
  if (got.files !== workload.files.length || got.bytes !== workload.bytes) {
    return `destination has ${got.files} files, ${got.bytes} bytes; expected ${workload.files.length}, ${workload.bytes}`;
  }
  const largest = workload.files.reduce((a, b) => (b.size > a.size ? b : a));
  const same = await sameHead(join(srcDir, largest.path), join(destDir, largest.path), 64 * KiB);
  return same ? null : `${largest.path}: first bytes differ from the source`;
}

async function sameHead(a: string, b: string, length: number): Promise<boolean> {
  const [x, y] = await Promise.all([readHead(a, length), readHead(b, length)]);
  return x.length === y.length && x.every((byte, i) => byte === y[i]);
}

async function readHead(path: string, length: number): Promise<Uint8Array> {
  using file = await Deno.open(path);
  const buffer = new Uint8Array(length);
  let filled = 0;
  while (filled < length) {
    const n = await file.read(buffer.subarray(filled));
    if (n === null) break;
    filled += n;
  }
  return buffer.subarray(0, filled);
}
