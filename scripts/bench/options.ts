/**
 * The bench's names (tools, workloads, placements) and its command line.
 */
import { parseArgs } from "node:util";
import { isAbsolute, join } from "node:path";

/**
 * ferry-plain: ferry without encryption (--open --plaintext), to measure what encryption costs.
 * ferry-sha256: ferry with `send --digest sha256` (to the same server as ferry).
 * magic-wormhole: `wormhole send` → `wormhole receive` through a mailbox server and a transit
 * relay of the bench's own, on 127.0.0.1.
 */
export const TOOLS = [
  "ferry",
  "ferry-plain",
  "ferry-sha256",
  "nc",
  "rsync",
  "rsync-fsync",
  "scp",
  "magic-wormhole",
] as const;
/**
 * resync: the small tree synced again with 1% of its files changed, ferry (`--on-conflict
 * update`) against `rsync -a` (resync.ts); it has a table of its own.
 */
export const WORKLOADS = ["big", "small", "mixed", "huge", "many", "resync"] as const;
/**
 * What runs without --workloads. huge (one 4 GiB file) and many (100,000 files) are there for
 * issue 7's memory target and take a while: ask for them by name.
 */
const DEFAULT_WORKLOADS: readonly WorkloadName[] = ["big", "small", "mixed", "resync"];
export const PLACEMENTS = ["tmpfs", "disk"] as const;
export type Tool = typeof TOOLS[number];
export type WorkloadName = typeof WORKLOADS[number];
export type Placement = typeof PLACEMENTS[number];

export interface Options {
  quick: boolean;
  runs: number;
  /** Runs of the 1 GiB and 4 GiB workloads (--big-runs; default --runs). */
  bigRuns: number;
  /**
   * Untimed rounds of every tool before a workload's timed runs (--warmup; default 1, 0 with
   * --quick): the timed runs meet warm caches and a server that has served that workload before,
   * as a long-running receiver has.
   */
  warmup: number;
  workloads: WorkloadName[];
  placements: Placement[];
  tools: Tool[];
  install: boolean;
  outDir: string;
  diskParent: string;
}

export const USAGE =
  `usage: deno task bench [--quick] [--runs N] [--big-runs N] [--warmup N] [--workloads ${
    WORKLOADS.join(",")
  }]
         [--placements ${PLACEMENTS.join(",")}]
         [--tools ${TOOLS.join(",")}]
         [--no-install] [--out DIR] [--disk-dir DIR]

The JSON goes to --out DIR, by default $XDG_STATE_HOME/ferry-bench (~/.local/state/ferry-bench
without XDG_STATE_HOME, the system temp dir without a home): outside the checkout.`;

/** A bad command line; an empty message asks for the usage (--help). */
export class UsageError extends Error {}

export function parseOptions(args: string[]): Options {
  try {
    return optionsFrom(args);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError((err instanceof Error ? err.message : String(err)).split("\n")[0]);
  }
}

function optionsFrom(args: string[]): Options {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      quick: { type: "boolean" },
      runs: { type: "string" },
      "big-runs": { type: "string" },
      warmup: { type: "string" },
      workloads: { type: "string" },
      placements: { type: "string" },
      tools: { type: "string" },
      "no-install": { type: "boolean" },
      out: { type: "string" },
      "disk-dir": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) throw new UsageError("");
  const quick = values.quick ?? false;
  const runs = values.runs === undefined ? (quick ? 1 : 5) : parseRuns(values.runs, "--runs");
  return {
    quick,
    runs,
    bigRuns: values["big-runs"] === undefined ? runs : parseRuns(values["big-runs"], "--big-runs"),
    warmup: values.warmup === undefined ? (quick ? 0 : 1) : parseWarmup(values.warmup),
    workloads: parseList("--workloads", values.workloads, WORKLOADS, DEFAULT_WORKLOADS),
    placements: parseList("--placements", values.placements, PLACEMENTS),
    tools: parseList("--tools", values.tools, TOOLS),
    install: !(values["no-install"] ?? false),
    outDir: values.out ?? defaultOutDir(),
    diskParent: values["disk-dir"] ?? tempParent(),
  };
}

function parseRuns(value: string, flag: string): number {
  const runs = Number(value);
  if (!/^\d+$/.test(value) || runs < 1) {
    throw new UsageError(`${flag} must be a whole number ≥ 1, not '${value}'`);
  }
  return runs;
}

function parseWarmup(value: string): number {
  if (!/^\d+$/.test(value)) {
    throw new UsageError(`--warmup must be a whole number ≥ 0, not '${value}'`);
  }
  return Number(value);
}

/** A comma-separated subset of `allowed`, in the order of `allowed`. */
function parseList<T extends string>(
  flag: string,
  value: string | undefined,
  allowed: readonly T[],
  byDefault: readonly T[] = allowed,
): T[] {
  if (value === undefined) return [...byDefault];
  const given = value.split(",").map((s) => s.trim()).filter((s) => s !== "");
  for (const item of given) {
    if (!(allowed as readonly string[]).includes(item)) {
      throw new UsageError(`${flag}: unknown '${item}' (one of ${allowed.join(", ")})`);
    }
  }
  if (given.length === 0) throw new UsageError(`${flag} needs at least one of ${allowed}`);
  return allowed.filter((item) => given.includes(item));
}

export function tempParent(): string {
  return Deno.env.get("TMPDIR") ?? "/tmp";
}

/**
 * Where the JSON goes without --out: a state folder of the user's, outside the checkout, so that
 * results are neither mixed with the source nor committed by accident.
 */
export function defaultOutDir(
  env: (name: string) => string | undefined = (name) => Deno.env.get(name),
): string {
  const state = env("XDG_STATE_HOME");
  if (state && isAbsolute(state)) return join(state, "ferry-bench");
  const home = env("HOME");
  if (home && isAbsolute(home)) return join(home, ".local", "state", "ferry-bench");
  return join(env("TMPDIR") ?? "/tmp", "ferry-bench");
}
