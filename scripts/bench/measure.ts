/**
 * The measurement: for each placement and workload, runs round-robin (run i:
 * every tool once, starting with tool i), each checked; then the medians of
 * the successful runs per tool, workload and placement.
 */
import { join } from "node:path";
import type { Options, Placement, Tool, WorkloadName } from "./options.ts";
import { tempParent } from "./options.ts";
import {
  capture,
  errorText,
  Interrupted,
  isInterrupted,
  isRoot,
  readVmHwm,
  resetVmHwm,
} from "./processes.ts";
import {
  destRoot,
  makeOwnDir,
  type PlacementDir,
  preparePlacement,
  releasePlacement,
  removeMadeDir,
  tmpfsSize,
} from "./placements.ts";
import {
  denoArgs,
  type Outcome,
  type RunContext,
  RUNNERS,
  type Servers,
  startServers,
  stopServers,
  type ToolClass,
  toolClass,
  toolLabel,
} from "./peers.ts";
import { verifyCopy, type Workload, writeWorkload } from "./workloads.ts";

export interface Attempt {
  tool: Tool;
  workload: WorkloadName;
  placement: Placement;
  run: number;
  seconds: number;
  ok: boolean;
  error: string | null;
  senderRssKiB: number | null;
  cpuSeconds: number | null;
}

export interface Skip {
  tool?: Tool;
  placement?: Placement;
  reason: string;
}

export interface ReceiverPeak {
  workload: WorkloadName;
  placement: Placement;
  rssKiB: number | null;
  /** false: clear_refs was refused, so the peak is since serve started. */
  reset: boolean;
}

/** A warm-up run (not counted) that failed its checks: listed under the table; the bench fails. */
export interface FailedWarmup {
  tool: Tool;
  workload: WorkloadName;
  placement: Placement;
  error: string;
}

export interface Measurements {
  attempts: Attempt[];
  receiverPeaks: ReceiverPeak[];
  skipped: Skip[];
  failedWarmups: FailedWarmup[];
}

/** Progress, on standard error (the table goes to standard output). */
export function log(line: string): void {
  console.error(`bench: ${line}`);
}

/**
 * Run i starts with tool i (mod n), so each tool runs first, last and in between in turn (each
 * still follows the same tool, but for the run it starts).
 */
function rotate<T>(items: T[], by: number): T[] {
  const k = by % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

/** Measures every workload on every placement that can be made; returns those measured. */
export async function measureAll(
  options: Options,
  workloads: Workload[],
  tools: Tool[],
  into: Measurements,
): Promise<Placement[]> {
  const confDir = await makeOwnDir(tempParent(), "ferry-bench-conf-");
  const measured: Placement[] = [];
  try {
    for (const placement of options.placements) {
      const dir = await placementOrSkip(placement, options, workloads, tools, into);
      if (dir === null) continue;
      measured.push(placement);
      try {
        await measurePlacement(dir, workloads, tools, options, confDir, into);
      } finally {
        await releasePlacement(dir);
      }
    }
  } finally {
    await removeMadeDir(confDir);
  }
  return measured;
}

async function placementOrSkip(
  placement: Placement,
  options: Options,
  workloads: Workload[],
  tools: Tool[],
  into: Measurements,
): Promise<PlacementDir | null> {
  if (placement === "tmpfs" && !isRoot()) {
    into.skipped.push({ placement, reason: "mounting a tmpfs needs root" });
    return null;
  }
  const size = tmpfsSize(
    workloads,
    runsKept(options),
    tools.length,
    tools.includes("magic-wormhole"),
  );
  try {
    return await preparePlacement(placement, options, size);
  } catch (err) {
    into.skipped.push({ placement, reason: errorText(err) });
    return null;
  }
}

async function measurePlacement(
  dir: PlacementDir,
  workloads: Workload[],
  tools: Tool[],
  options: Options,
  confDir: string,
  into: Measurements,
): Promise<void> {
  const servers = await startServers(tools, dir, confDir);
  try {
    for (const workload of workloads) {
      await measureWorkload(dir, workload, tools, servers, options, into);
    }
  } finally {
    await stopServers(servers);
  }
}

async function measureWorkload(
  dir: PlacementDir,
  workload: Workload,
  tools: Tool[],
  servers: Servers,
  options: Options,
  into: Measurements,
): Promise<void> {
  const srcDir = join(dir.root, "src");
  log(`[${dir.placement}] ${workload.name}: writing ${workload.description}`);
  await writeWorkload(workload, srcDir);
  await sync();
  try {
    // Untimed: every tool once per warm-up round, each checked and logged, none counted (a failed
    // one is listed and fails the bench).
    for (let round = 1; round <= options.warmup; round++) {
      for (const tool of tools) {
        if (isInterrupted()) throw new Interrupted();
        const label = `warm-up ${round}/${options.warmup} (not counted)`;
        const name = `warmup${round}`;
        const { error } = await runChecked(
          dir,
          workload,
          tool,
          name,
          label,
          servers,
          srcDir,
          options,
        );
        if (error !== null) {
          into.failedWarmups.push({
            tool,
            workload: workload.name,
            placement: dir.placement,
            error,
          });
        }
      }
    }
    // The receiver's peak counts the timed runs only.
    const reset = servers.ferry ? await resetVmHwm(servers.ferry.proc.pid) : false;
    for (let run = 1; run <= runsOf(workload, options); run++) {
      for (const tool of rotate(tools, run - 1)) {
        if (isInterrupted()) throw new Interrupted();
        const attempt = await measureOnce(dir, workload, tool, run, servers, srcDir, options);
        into.attempts.push(attempt);
      }
    }
    if (servers.ferry) {
      const rssKiB = await readVmHwm(servers.ferry.proc.pid);
      into.receiverPeaks.push({ workload: workload.name, placement: dir.placement, rssKiB, reset });
    }
  } finally {
    log(`[${dir.placement}] ${workload.name}: deleting the phase's data`);
    await emptyDir(srcDir);
    await emptyDir(destRoot(dir));
    if (servers.ferry) await removeInboxLeftovers(servers.ferry.inbox);
  }
}

/** One timed run of `tool`, checked. */
async function measureOnce(
  dir: PlacementDir,
  workload: Workload,
  tool: Tool,
  run: number,
  servers: Servers,
  srcDir: string,
  options: Options,
): Promise<Attempt> {
  const label = `run ${run}/${runsOf(workload, options)}`;
  const { outcome, error } = await runChecked(
    dir,
    workload,
    tool,
    `${run}`,
    label,
    servers,
    srcDir,
    options,
  );
  return {
    tool,
    workload: workload.name,
    placement: dir.placement,
    run,
    seconds: outcome.seconds,
    ok: error === null,
    error,
    senderRssKiB: outcome.senderRssKiB,
    cpuSeconds: outcome.cpuSeconds,
  };
}

/** Runs `tool` once into its own destination folder (named by `name`), checks the copy, logs it. */
async function runChecked(
  dir: PlacementDir,
  workload: Workload,
  tool: Tool,
  name: string,
  label: string,
  servers: Servers,
  srcDir: string,
  options: Options,
): Promise<{ outcome: Outcome; error: string | null }> {
  const destDir = join(destRoot(dir), `${workload.name}-${tool}-${name}`);
  await Deno.mkdir(destDir, { recursive: true });
  const ctx: RunContext = {
    workload,
    srcDir,
    destDir,
    servers,
    timeoutMs: options.quick ? 120_000 : 900_000,
  };
  const outcome = await RUNNERS[tool](ctx);
  const error = outcome.error ?? await verifyCopy(workload, srcDir, destDir);
  const status = error === null ? "ok" : `FAILED: ${error}`;
  log(
    `[${dir.placement}] ${workload.name} ${label} ${tool}: ${
      outcome.seconds.toFixed(3)
    } s ${status}`,
  );
  if (!workload.keepRuns) await Deno.remove(destDir, { recursive: true }).catch(() => {});
  await sync(); // the next run does not pay for this run's write-back
  return { outcome, error };
}

/** Runs of each tool whose copies a many-file workload keeps until it is done: warm-ups too. */
export function runsKept(options: Pick<Options, "warmup" | "runs">): number {
  return options.warmup + options.runs;
}

function runsOf(workload: Workload, options: Options): number {
  return workload.name === "big" || workload.name === "huge" ? options.bigRuns : options.runs;
}

async function sync(): Promise<void> {
  await capture("sync", []);
}

async function emptyDir(path: string): Promise<void> {
  await Deno.mkdir(path, { recursive: true });
  for await (const entry of Deno.readDir(path)) {
    await Deno.remove(join(path, entry.name), { recursive: true });
  }
}

/** What a failed ferry run may have left in the serve folder (not its .ferry state). */
async function removeInboxLeftovers(inbox: string): Promise<void> {
  for await (const entry of Deno.readDir(inbox)) {
    if (entry.name !== ".ferry") await Deno.remove(join(inbox, entry.name), { recursive: true });
  }
}

// ---------------------------------------------------------------------------
// Start-up time

export const STARTUP_SAMPLES = 10;

/** Wall times of `ferry --version` through `deno run`, after one warm-up run. */
export async function measureStartup(): Promise<number[]> {
  await capture(Deno.execPath(), denoArgs("--version")); // warm the module cache
  const samples: number[] = [];
  for (let i = 0; i < STARTUP_SAMPLES; i++) {
    const began = performance.now();
    const result = await capture(Deno.execPath(), denoArgs("--version"));
    if (!result.ok) throw new Error(`ferry --version failed: ${result.text.trim()}`);
    samples.push((performance.now() - began) / 1000);
  }
  return samples;
}

// ---------------------------------------------------------------------------
// Medians

export interface CaseSummary {
  tool: Tool;
  /** The name in the table: `tar | nc` for nc sending a folder. */
  label: string;
  /** encrypted or plain: the table's groups. */
  class: ToolClass;
  workload: WorkloadName;
  placement: Placement;
  runs: number;
  ok: number;
  medianSeconds: number | null;
  mbPerSecond: number | null;
  /** Median CPU seconds the machine spent busy during the successful runs (all processes). */
  medianCpuSeconds: number | null;
  /** ferry's median time / this tool's median time: above 1, the tool is faster. */
  speedVsFerry: number | null;
  senderPeakRssMB: number | null;
  receiverPeakRssMB: number | null;
  seconds: number[];
  errors: string[];
}

export function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  // values is not empty, so mid and mid - 1 (for an even length) are in it.
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** One summary per tool, workload and placement that ran, by placement, workload and tool. */
export function summarize(
  measurements: Measurements,
  workloads: Workload[],
  placements: Placement[],
  tools: Tool[],
): CaseSummary[] {
  const summaries: CaseSummary[] = [];
  for (const placement of placements) {
    for (const workload of workloads) {
      const cases = tools.map((tool) => summarizeCase(measurements, workload, placement, tool));
      if (cases.every((c) => c.runs === 0)) continue;
      const ferry = cases.find((c) => c.tool === "ferry")?.medianSeconds ?? null;
      for (const c of cases) {
        c.speedVsFerry = ferry !== null && c.medianSeconds ? ferry / c.medianSeconds : null;
      }
      summaries.push(...cases.filter((c) => c.runs > 0));
    }
  }
  return summaries;
}

function summarizeCase(
  measurements: Measurements,
  workload: Workload,
  placement: Placement,
  tool: Tool,
): CaseSummary {
  const attempts = measurements.attempts.filter((a) =>
    a.tool === tool && a.workload === workload.name && a.placement === placement
  );
  const good = attempts.filter((a) => a.ok);
  const seconds = good.map((a) => a.seconds);
  const medianSeconds = median(seconds);
  const cpu = good.map((a) => a.cpuSeconds).filter((c): c is number => c !== null);
  const senderRss = good.map((a) => a.senderRssKiB).filter((k): k is number => k !== null);
  const receiver = measurements.receiverPeaks.find((p) =>
    p.workload === workload.name && p.placement === placement
  );
  const isFerry = tool === "ferry";
  return {
    tool,
    label: toolLabel(tool, workload),
    class: toolClass(tool),
    workload: workload.name,
    placement,
    runs: attempts.length,
    ok: good.length,
    medianSeconds,
    mbPerSecond: medianSeconds ? workload.bytes / 1e6 / medianSeconds : null,
    medianCpuSeconds: median(cpu),
    speedVsFerry: null,
    senderPeakRssMB: isFerry && senderRss.length > 0 ? Math.max(...senderRss) / 1024 : null,
    receiverPeakRssMB: isFerry && receiver?.rssKiB ? receiver.rssKiB / 1024 : null,
    seconds,
    errors: attempts.flatMap((a) => (a.error === null ? [] : [`run ${a.run}: ${a.error}`])),
  };
}
