/**
 * What the bench hands back: a markdown table of the medians, grouped by
 * class (encrypted tools, then plain ones), and the same data as JSON with
 * the machine it ran on.
 */
import { join } from "node:path";
import type { Options, WorkloadName } from "./options.ts";
import { capture, lastLine } from "./processes.ts";
import { denoArgs, TOOL_CLASSES, type ToolClass, twistCommand } from "./peers.ts";
import {
  type Attempt,
  type CaseSummary,
  type FailedWarmup,
  median,
  type ReceiverPeak,
  type Skip,
} from "./measure.ts";
import { MiB, type Workload } from "./workloads.ts";
import type { ResyncResult } from "./resync.ts";

function fixed(value: number | null, digits: number): string {
  return value === null ? "—" : value.toFixed(digits);
}

/** Each class's heading above its table. */
const CLASS_HEADINGS: Record<ToolClass, string> = {
  encrypted: "Encrypted: ferry (ferry-sha256: with `send --digest sha256`), scp, magic-wormhole",
  plain:
    "Plain, no encryption: ferry-plain (ferry --plaintext), rsync, rsync-fsync (rsync --fsync)," +
    " nc (a file) and tar | nc (a folder)",
};

const HEADER = [
  "| tool | workload | placement | runs ok | median s | MB/s | vs ferry | CPU s | ferry sender RSS MiB | ferry receiver RSS MiB |",
  "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
];

/**
 * One class's rows: by placement and workload as measured, and within each the class's tools
 * in TOOL_CLASSES' order.
 */
function classRows(summaries: CaseSummary[], toolClass: ToolClass): CaseSummary[] {
  const order = TOOL_CLASSES[toolClass];
  const group = (s: CaseSummary) => `${s.placement}/${s.workload}`;
  const groups = [...new Set(summaries.map(group))];
  return summaries
    .filter((s) => s.class === toolClass)
    .sort((a, b) =>
      groups.indexOf(group(a)) - groups.indexOf(group(b)) ||
      order.indexOf(a.tool) - order.indexOf(b.tool)
    );
}

function row(s: CaseSummary): string {
  return `| ${
    s.label.replaceAll("|", "\\|")
  } | ${s.workload} | ${s.placement} | ${s.ok}/${s.runs} | ${fixed(s.medianSeconds, 3)} | ${
    fixed(s.mbPerSecond, 1)
  } | ${fixed(s.speedVsFerry, 2)} | ${fixed(s.medianCpuSeconds, 2)} | ${
    fixed(s.senderPeakRssMB, 0)
  } | ${fixed(s.receiverPeakRssMB, 0)} |`;
}

export function markdownTable(
  summaries: CaseSummary[],
  workloads: Workload[],
  startup: number[],
  skipped: Skip[],
  failedWarmups: FailedWarmup[] = [],
): string {
  const lines = [
    ...workloads.map((w) => `- ${w.name}: ${w.description}`),
    "- median s: median wall time of the successful runs (start of the sending command until" +
    " every process of the run has exited)",
    "- MB/s: workload bytes / median s, in 10^6 bytes per second",
    "- vs ferry: ferry's median time / the tool's median time (above 1: the tool is faster)",
    "- CPU s: median CPU time the whole machine spent busy during a run (user + system, every" +
    " process: the sender, the receiver and its server), from /proc/stat",
    "- RSS: peak resident memory of ferry's sender (highest of the runs) and receiver" +
    " (`ferry serve`, over the workload's runs), in MiB",
  ];
  for (const toolClass of ["encrypted", "plain"] as const) {
    const rows = classRows(summaries, toolClass);
    if (rows.length === 0) continue;
    lines.push("", CLASS_HEADINGS[toolClass], "", ...HEADER, ...rows.map(row));
  }
  lines.push(
    "",
    `\`ferry --version\` start-up (deno run, median of ${startup.length}): ${
      fixed(median(startup), 3)
    } s`,
  );
  for (const skip of skipped) {
    lines.push(`skipped ${skip.tool ?? skip.placement}: ${skip.reason}`);
  }
  for (const s of summaries) {
    for (const error of s.errors) {
      lines.push(`FAILED ${s.tool} ${s.workload} ${s.placement} ${error}`);
    }
  }
  for (const w of failedWarmups) {
    lines.push(`FAILED (warm-up, not counted) ${w.tool} ${w.workload} ${w.placement} ${w.error}`);
  }
  return lines.join("\n");
}

// ---------------------------------------------------------------------------
// The JSON

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  memoryMiB: number;
  kernel: string;
  os: string;
  deno: typeof Deno.version;
  tools: Record<string, string>;
  /** `git describe --always --dirty` of the ferry tree measured, or "unknown" outside git. */
  ferryRevision: string;
  /** /proc/loadavg when the bench started and when it ended: other work skews the numbers. */
  loadAverage: { start: string; end: string };
}

export async function loadAverage(): Promise<string> {
  return (await Deno.readTextFile("/proc/loadavg").catch(() => "")).trim();
}

export async function machineInfo(loadAtStart: string): Promise<MachineInfo> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  return {
    cpus: navigator.hardwareConcurrency,
    cpuModel: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? "unknown",
    memoryMiB: Math.round(Deno.systemMemoryInfo().total / MiB),
    kernel: Deno.osRelease(),
    os: lastLine((await capture("sh", ["-c", "grep PRETTY_NAME /etc/os-release"])).text),
    deno: Deno.version,
    tools: await toolVersions(),
    ferryRevision: await ferryRevision(),
    loadAverage: { start: loadAtStart, end: await loadAverage() },
  };
}

async function ferryRevision(): Promise<string> {
  const repo = new URL("../..", import.meta.url).pathname;
  const described = await capture("git", ["-C", repo, "describe", "--always", "--dirty"]);
  return described.ok ? described.text.trim() : "unknown";
}

async function toolVersions(): Promise<Record<string, string>> {
  const first = async (cmd: string, args: string[]) =>
    (await capture(cmd, args)).text.trim().split("\n")[0] ?? "";
  const pkg = async (name: string) => await first("dpkg-query", ["-W", "-f", "${Version}", name]);
  return {
    ferry: await first(Deno.execPath(), denoArgs("--version")),
    rsync: await first("rsync", ["--version"]),
    ssh: await first("ssh", ["-V"]),
    "netcat-openbsd": await pkg("netcat-openbsd"),
    "openssh-server": await pkg("openssh-server"),
    tar: await first("tar", ["--version"]),
    "magic-wormhole": await first("wormhole", ["--version"]),
    "python3-magic-wormhole-mailbox-server": await pkg("python3-magic-wormhole-mailbox-server"),
    "magic-wormhole-transit-relay": await pkg("magic-wormhole-transit-relay"),
    twisted: await first(twistCommand() ?? "twist3", ["--version"]),
  };
}

export interface Report {
  date: string;
  argv: string[];
  options: Omit<Options, "outDir" | "diskParent">;
  machine: MachineInfo;
  startupSeconds: { median: number | null; samples: number[] };
  workloads: { name: WorkloadName; files: number; bytes: number; description: string }[];
  ratio: string;
  /** The table's groups: which tools are encrypted and which plain. */
  classes: typeof TOOL_CLASSES;
  results: CaseSummary[];
  /** The re-sync workload's results (resync.ts), if it ran. */
  resync: ResyncResult[];
  receiverPeaks: ReceiverPeak[];
  attempts: Attempt[];
  skipped: Skip[];
  failedWarmups: FailedWarmup[];
}

/** Writes the report as `<outDir>/<date>.json`; returns its path. */
export async function writeJson(report: Report, outDir: string): Promise<string> {
  await Deno.mkdir(outDir, { recursive: true });
  const path = join(outDir, `${report.date.replace(/[:.]/g, "-")}.json`);
  await Deno.writeTextFile(path, JSON.stringify(report, null, 2) + "\n");
  return path;
}
