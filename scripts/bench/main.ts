/**
 * ferry's benchmark: `ferry send` → `ferry serve` against the tools people
 * already use to move files (scp and magic-wormhole, encrypted like ferry;
 * nc, tar | nc and the rsync daemon with and without --fsync, plain), all on
 * 127.0.0.1, on a fresh tmpfs and on disk.
 *
 *   deno task bench [--quick] [--runs N] [--big-runs N] [--workloads ...] [--placements ...]
 *                   [--tools ...] [--no-install] [--out DIR] [--disk-dir DIR]
 *
 * It makes its own data, runs the tools round-robin (run i: every tool once),
 * checks every run (file count, total size, the first bytes of the largest
 * file; for ferry also exit code 0 and its summary), prints a markdown table
 * of medians grouped by class and writes the same data as JSON, by default
 * outside the checkout (options.ts). Every server and mount it makes is
 * undone before it exits, also on an error or Ctrl+C. docs/PERFORMANCE.md
 * explains the method.
 *
 * The parts: options.ts (flags), processes.ts (children, timing, CPU seconds,
 * peak RSS), ports.ts, workloads.ts (the data and its checks), placements.ts
 * (tmpfs or disk), install.ts (which tools can run), peers.ts (servers and
 * one run of each tool), measure.ts (round-robin runs, medians), report.ts
 * (the table and the JSON).
 */
import { parseOptions, USAGE, UsageError } from "./options.ts";
import { Interrupted, markInterrupted, stopAllProcesses } from "./processes.ts";
import { releaseEverything } from "./placements.ts";
import { resolvePeers } from "./install.ts";
import { TOOL_CLASSES } from "./peers.ts";
import {
  log,
  measureAll,
  type Measurements,
  measureStartup,
  median,
  STARTUP_SAMPLES,
  summarize,
} from "./measure.ts";
import { loadAverage, machineInfo, markdownTable, writeJson } from "./report.ts";
import { makeWorkload } from "./workloads.ts";
import { measureResync, type ResyncResult, resyncTable } from "./resync.ts";

/** Stops every child still running, unmounts every tmpfs and removes the folders it made. */
async function cleanUpEverything(): Promise<void> {
  await stopAllProcesses();
  await releaseEverything();
}

function installSignalHandlers(): void {
  let stopping = false;
  const onSignal = async () => {
    if (stopping) return;
    stopping = true;
    markInterrupted();
    console.error("\nbench: interrupted; stopping servers and unmounting");
    await cleanUpEverything();
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
}

async function main(args: string[]): Promise<number> {
  const options = parseOptions(args);
  const loadAtStart = await loadAverage();
  installSignalHandlers();
  log(`the JSON will go to ${options.outDir}`);
  // resync has its own measurement and table (resync.ts).
  const workloads = options.workloads.filter((name) => name !== "resync")
    .map((name) => makeWorkload(name, options.quick));
  const measurements: Measurements = {
    attempts: [],
    receiverPeaks: [],
    skipped: [],
    failedWarmups: [],
  };
  const peers = await resolvePeers(options.tools, options.install);
  measurements.skipped.push(...peers.skipped);
  for (const skip of peers.skipped) log(`skipping ${skip.tool}: ${skip.reason}`);
  if (peers.usable.length === 0) throw new Error("no tool can run");
  log(`measuring start-up (ferry --version, ${STARTUP_SAMPLES} runs)`);
  const startup = await measureStartup();
  const date = new Date().toISOString();
  const placements = workloads.length === 0
    ? []
    : await measureAll(options, workloads, peers.usable, measurements);
  const results = summarize(measurements, workloads, placements, peers.usable);
  console.log(
    markdownTable(results, workloads, startup, measurements.skipped, measurements.failedWarmups),
  );
  let resync: ResyncResult[] = [];
  if (options.workloads.includes("resync")) {
    const workload = makeWorkload("resync", options.quick);
    const measured = await measureResync(options, workload, peers.usable);
    resync = measured.results;
    for (const skip of measured.skipped) measurements.skipped.push(skip);
    console.log(`\n${resyncTable(resync, workload)}`);
  }
  const { outDir: _out, diskParent: _disk, ...shown } = options;
  const path = await writeJson({
    date,
    argv: args,
    options: shown,
    machine: await machineInfo(loadAtStart),
    startupSeconds: { median: median(startup), samples: startup },
    workloads: workloads.map((w) => ({
      name: w.name,
      files: w.files.length,
      bytes: w.bytes,
      description: w.description,
    })),
    ratio: "speedVsFerry = ferry median seconds / tool median seconds (above 1: tool is faster)",
    classes: TOOL_CLASSES,
    results,
    resync,
    receiverPeaks: measurements.receiverPeaks,
    attempts: measurements.attempts,
    skipped: measurements.skipped,
    failedWarmups: measurements.failedWarmups,
  }, options.outDir);
  console.log(`\nload average at start / end: ${loadAtStart} / ${await loadAverage()}`);
  console.log(`JSON: ${path}`);
  return measurements.attempts.every((a) => a.ok) && measurements.failedWarmups.length === 0 &&
      resync.every((r) => r.errors.length === 0)
    ? 0
    : 1;
}

if (import.meta.main) {
  let code = 1;
  try {
    code = await main(Deno.args);
  } catch (err) {
    if (err instanceof UsageError) {
      if (err.message) console.error(`bench: ${err.message}\n${USAGE}`);
      else console.log(USAGE);
      code = err.message ? 2 : 0;
    } else if (err instanceof Interrupted) {
      code = 130;
    } else {
      console.error(`bench: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
    }
  } finally {
    await cleanUpEverything();
  }
  Deno.exit(code);
}
