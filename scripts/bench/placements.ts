/**
 * Placements: where a workload's source and destinations live, a fresh tmpfs
 * or a folder on disk. Every mount and folder made here is tracked and undone
 * by releaseEverything, also on an error or Ctrl+C.
 */
import { join } from "node:path";
import type { Options, Placement } from "./options.ts";
import { tempParent } from "./options.ts";
import { capture, lastLine, sleep } from "./processes.ts";
import { MiB, type Workload } from "./workloads.ts";

/** tmpfs mounts still mounted and folders made: undone on exit. */
const liveMounts = new Set<string>();
const liveDirs = new Set<string>();

export interface PlacementDir {
  placement: Placement;
  root: string;
  /** The tmpfs mount point, to unmount at the end. */
  mount: string | null;
}

/** A temporary folder of the bench's own, removed by releaseEverything if still there. */
export async function makeOwnDir(parent: string, prefix: string): Promise<string> {
  const dir = await Deno.makeTempDir({ dir: parent, prefix });
  liveDirs.add(dir);
  return dir;
}

export async function removeMadeDir(dir: string): Promise<void> {
  if (liveMounts.has(dir)) return; // never delete through a mount that is still there
  // On Ctrl+C a write still under way may add a file while the folder is removed: try again.
  for (let attempt = 0; attempt < 3; attempt++) {
    const removed = await Deno.remove(dir, { recursive: true }).then(() => true, (err) => {
      return err instanceof Deno.errors.NotFound;
    });
    if (removed) break;
    await sleep(100);
  }
  liveDirs.delete(dir);
}

/** Unmounts every tmpfs and removes every folder the bench made. */
export async function releaseEverything(): Promise<void> {
  for (const dir of [...liveMounts]) await unmountTmpfs(dir);
  for (const dir of [...liveDirs]) await removeMadeDir(dir);
}

export async function preparePlacement(
  placement: Placement,
  options: Options,
  tmpfsBytes: number,
): Promise<PlacementDir> {
  const parent = placement === "disk" ? options.diskParent : tempParent();
  const root = await makeOwnDir(parent, `ferry-bench-${placement}-`);
  if (placement === "disk") return { placement, root, mount: null };
  const mounted = await capture("mount", [
    "-t",
    "tmpfs",
    "-o",
    `size=${Math.ceil(tmpfsBytes / MiB)}m`,
    "tmpfs",
    root,
  ]);
  if (!mounted.ok) {
    await removeMadeDir(root);
    throw new Error(`mount -t tmpfs failed: ${lastLine(mounted.text)}`);
  }
  liveMounts.add(root);
  return { placement, root, mount: root };
}

export async function releasePlacement(dir: PlacementDir): Promise<void> {
  if (dir.mount !== null) await unmountTmpfs(dir.mount);
  await removeMadeDir(dir.root);
}

/** Unmounts; if busy, tries again, then detaches it lazily (umount -l). */
async function unmountTmpfs(dir: string): Promise<void> {
  let result = await capture("umount", [dir]);
  if (!result.ok) {
    await sleep(500);
    result = await capture("umount", [dir]);
  }
  if (!result.ok) {
    console.error(`bench: umount ${dir} failed (${lastLine(result.text)}); detaching it lazily`);
    result = await capture("umount", ["-l", dir]);
  }
  if (result.ok) liveMounts.delete(dir);
}

/**
 * The tmpfs size for the selected workloads: sources plus every destination kept at once, plus
 * one more copy where a tool stages the whole workload in a temporary file first
 * (`stagingCopy`: magic-wormhole zips a folder before it sends it).
 */
export function tmpfsSize(
  workloads: Workload[],
  runs: number,
  tools: number,
  stagingCopy = false,
): number {
  const need = workloads.map((w) => {
    const onTmpfs = w.files.reduce((sum, f) => sum + Math.ceil(f.size / 4096) * 4096, 0);
    const copies = (w.keepRuns ? 1 + runs * tools : 2) + (stagingCopy ? 1 : 0);
    return onTmpfs * copies;
  });
  return Math.max(...need) + 256 * MiB;
}

/** Where each run's destination folders go: the rsync module's path. */
export function destRoot(dir: PlacementDir): string {
  return join(dir.root, "dest");
}
