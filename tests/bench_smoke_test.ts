/**
 * Smoke test of the benchmark (scripts/bench/) on tiny data (ferry, and
 * magic-wormhole where it is installed; on disk, no apt), so that it cannot
 * rot while ferry changes.
 */
import { assert, assertEquals, assertMatch, assertThrows } from "@std/assert";
import { join } from "node:path";
import { busyCpuSeconds, parseBusyCpuSeconds } from "../scripts/bench/processes.ts";
import { defaultOutDir, parseOptions, UsageError } from "../scripts/bench/options.ts";
import { type CaseSummary, runsKept } from "../scripts/bench/measure.ts";
import { tmpfsSize } from "../scripts/bench/placements.ts";
import { markdownTable } from "../scripts/bench/report.ts";
import { makeWorkload } from "../scripts/bench/workloads.ts";

const BENCH = new URL("../scripts/bench/main.ts", import.meta.url).pathname;

/** Runs the bench on tiny data, on disk, without apt-get, writing its JSON to `out`. */
async function quickBench(out: string, ...args: string[]) {
  const run = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--allow-all",
      BENCH,
      "--quick",
      "--runs",
      "1",
      "--placements",
      "disk",
      "--no-install",
      "--out",
      out,
      ...args,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  return {
    code: run.code,
    stdout: new TextDecoder().decode(run.stdout),
    stderr: new TextDecoder().decode(run.stderr),
  };
}

interface BenchJson {
  results: {
    tool: string;
    class: string;
    workload: string;
    placement: string;
    ok: number;
    runs: number;
    medianCpuSeconds: number | null;
  }[];
  resync: {
    tool: string;
    placement: string;
    seconds: number[];
    sentBytes: number | null;
    unchangedDataBytes: number | null;
    errors: string[];
  }[];
  failedWarmups: unknown[];
  machine: { cpus: number; kernel: string };
  startupSeconds: { median: number | null };
}

Deno.test("the bench --quick runs every workload for ferry and writes JSON", async () => {
  const out = await Deno.makeTempDir({ prefix: "ferry-bench-smoke-" });
  try {
    const { code, stdout, stderr } = await quickBench(out, "--tools", "ferry", "--warmup", "1");
    assertEquals(code, 0, `stdout:\n${stdout}\nstderr:\n${stderr}`);
    // A warm-up round runs and is checked before each workload's timed runs, and is not counted.
    for (const workload of ["big", "small", "mixed"]) {
      assertMatch(
        stderr,
        new RegExp(`\\] ${workload} warm-up 1/1 \\(not counted\\) ferry: .* s ok$`, "m"),
      );
    }
    assertMatch(stdout, /^Encrypted: /m);
    assertMatch(stdout, /^\| tool \| workload \| placement \| .* \| vs ferry \| CPU s \|/m);
    for (const workload of ["big", "small", "mixed"]) {
      // runs ok, median s, MB/s, vs ferry, then the CPU seconds.
      assertMatch(
        stdout,
        new RegExp(
          `^\\| ferry \\| ${workload} \\| disk \\| 1/1 \\| \\d[^|]* \\|[^|]+\\|[^|]+\\| \\d+\\.\\d\\d \\|`,
          "m",
        ),
      );
    }
    assertMatch(stdout, /ferry --version` start-up .*: \d+\.\d+ s/);
    assertMatch(stdout, new RegExp(`^JSON: ${out}/.*\\.json$`, "m"));

    const files = [...Deno.readDirSync(out)].map((e) => e.name).filter((n) => n.endsWith(".json"));
    assertEquals(files.length, 1, `JSON files in ${out}: ${files}`);
    const report: BenchJson = JSON.parse(await Deno.readTextFile(join(out, files[0]!)));
    assertEquals(report.results.map((r) => `${r.tool}/${r.workload}/${r.placement}`), [
      "ferry/big/disk",
      "ferry/small/disk",
      "ferry/mixed/disk",
    ]);
    assert(report.results.every((r) => r.ok === 1 && r.runs === 1));
    assertEquals(report.failedWarmups, []);
    // Each run sends and receives: the machine was busy for some of it.
    assert(report.results.every((r) => (r.medianCpuSeconds ?? 0) > 0), JSON.stringify(report));
    assert(report.machine.cpus > 0 && report.machine.kernel !== "");
    assert((report.startupSeconds.median ?? 0) > 0);
    assertEquals(report.results.map((r) => r.class), ["encrypted", "encrypted", "encrypted"]);
    // The re-sync workload: timed, its bytes counted, and an unchanged tree sent no file data.
    assertMatch(stdout, /^\| disk \| ferry \| \d+\.\d{3} \| 1\.00 \| \d+ \| \d+ \|/m);
    assertEquals(report.resync.map((r) => [r.tool, r.placement, r.errors]), [[
      "ferry",
      "disk",
      [],
    ]]);
    assertEquals(report.resync[0]!.seconds.length, 1);
    assert((report.resync[0]!.sentBytes ?? 0) > 0);
    assertEquals(report.resync[0]!.unchangedDataBytes, 0);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("the bench runs magic-wormhole on loopback, or says why it skipped it", async () => {
  const out = await Deno.makeTempDir({ prefix: "ferry-bench-smoke-" });
  try {
    const { code, stdout, stderr } = await quickBench(
      out,
      "--tools",
      "ferry,magic-wormhole",
      "--workloads",
      "big,small",
    );
    assertEquals(code, 0, `stdout:\n${stdout}\nstderr:\n${stderr}`);
    const skipped = /^skipped magic-wormhole: (.*)$/m.exec(stdout);
    if (skipped !== null) {
      // Not installed here (the bench installs it only as root, without --no-install).
      assertMatch(skipped[1], /^needs magic-wormhole, .*: not installed \(--no-install\)$/);
      console.log(`magic-wormhole skipped: ${skipped[1]}`);
      return;
    }
    const encrypted = stdout.slice(stdout.indexOf("Encrypted: "));
    for (const workload of ["big", "small"]) {
      assertMatch(
        encrypted,
        new RegExp(`^\\| magic-wormhole \\| ${workload} \\| disk \\| 1/1 \\| \\d[^|]*\\|`, "m"),
      );
    }
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("the table groups tools by class: encrypted first, then plain", () => {
  const workloads = [makeWorkload("big", true), makeWorkload("small", true)];
  const summary =
    (tool: CaseSummary["tool"], label: string, cls: CaseSummary["class"]) =>
    (workload: "big" | "small"): CaseSummary => ({
      tool,
      label,
      class: cls,
      workload,
      placement: "tmpfs",
      runs: 1,
      ok: 1,
      medianSeconds: 1,
      mbPerSecond: 8.4,
      medianCpuSeconds: 1.5,
      speedVsFerry: 1,
      senderPeakRssMB: null,
      receiverPeakRssMB: null,
      seconds: [1],
      errors: [],
    });
  // In the order of TOOLS, as summarize() gives them.
  const summaries = [
    summary("ferry", "ferry", "encrypted")("big"),
    summary("nc", "nc", "plain")("big"),
    summary("rsync", "rsync", "plain")("big"),
    summary("magic-wormhole", "magic-wormhole", "encrypted")("big"),
    summary("ferry", "ferry", "encrypted")("small"),
    summary("nc", "tar | nc", "plain")("small"),
    summary("rsync", "rsync", "plain")("small"),
    summary("magic-wormhole", "magic-wormhole", "encrypted")("small"),
  ];
  const table = markdownTable(summaries, workloads, [0.1], []);
  const rows = table.split("\n").filter((l) => /^\| [a-z]/.test(l) && !l.startsWith("| tool "));
  assertEquals(rows.map((r) => r.split(" | ").slice(0, 2).join(" ")), [
    "| ferry big",
    "| magic-wormhole big",
    "| ferry small",
    "| magic-wormhole small",
    "| rsync big",
    "| nc big",
    "| rsync small",
    "| tar \\| nc small",
  ]);
  assert(table.indexOf("Encrypted: ") < table.indexOf("Plain, no encryption: "));
  assert(rows.every((r) => r.includes(" | 1.50 | ")), "every row has its CPU seconds");
});

Deno.test("parseOptions() takes --warmup: one untimed round by default, none with --quick", () => {
  assertEquals(parseOptions([]).warmup, 1);
  assertEquals(parseOptions(["--quick"]).warmup, 0);
  assertEquals(parseOptions(["--warmup", "0"]).warmup, 0);
  assertEquals(parseOptions(["--quick", "--warmup", "2"]).warmup, 2);
  for (const bad of ["-1", "1.5", "x", ""]) {
    assertThrows(() => parseOptions([`--warmup=${bad}`]), UsageError, "whole number ≥ 0");
  }
});

Deno.test("the tmpfs holds every copy a many-file workload keeps, its warm-ups' too", () => {
  const kept = { ...makeWorkload("small", true), keepRuns: true };
  const onTmpfs = kept.files.reduce((sum, f) => sum + Math.ceil(f.size / 4096) * 4096, 0);
  const runs = runsKept({ warmup: 1, runs: 5 });
  assertEquals(runs, 6);
  assertEquals(tmpfsSize([kept], runs, 3), onTmpfs * (1 + 6 * 3) + 256 * 1024 * 1024);
});

Deno.test("a failed warm-up is listed under the table", () => {
  const failed = [{
    tool: "rsync" as const,
    workload: "small" as const,
    placement: "tmpfs" as const,
    error: "exit code 23",
  }];
  const table = markdownTable([], [], [0.1], [], failed);
  assertMatch(table, /^FAILED \(warm-up, not counted\) rsync small tmpfs exit code 23$/m);
});

Deno.test("the JSON goes outside the checkout by default: the XDG state folder", () => {
  const env = (vars: Record<string, string>) => (name: string) => vars[name];
  assertEquals(
    defaultOutDir(env({ XDG_STATE_HOME: "/s", HOME: "/h" })),
    "/s/ferry-bench",
  );
  assertEquals(defaultOutDir(env({ HOME: "/h" })), "/h/.local/state/ferry-bench");
  assertEquals(
    defaultOutDir(env({ XDG_STATE_HOME: "relative", HOME: "/h" })),
    "/h/.local/state/ferry-bench",
  );
  assertEquals(defaultOutDir(env({ TMPDIR: "/t" })), "/t/ferry-bench");
  assertEquals(defaultOutDir(env({})), "/tmp/ferry-bench");
});

Deno.test("parseBusyCpuSeconds() adds user, nice, system, irq and softirq, in seconds", () => {
  // user nice system idle iowait irq softirq steal guest guest_nice
  const stat = "cpu  1000 20 300 999999 77 4 6 5000 0 0\ncpu0 500 10 150 500000 40 2 3 2500 0 0\n";
  assertEquals(parseBusyCpuSeconds(stat), (1000 + 20 + 300 + 4 + 6) / 100);
  assertEquals(parseBusyCpuSeconds("cpu 1 2 3 4 5 6 7"), (1 + 2 + 3 + 6 + 7) / 100);
  assertEquals(parseBusyCpuSeconds("intr 1 2 3\n"), null);
  assertEquals(parseBusyCpuSeconds("cpu 1 2\n"), null);
  assertEquals(parseBusyCpuSeconds("cpu a b c d e f g\n"), null);
});

Deno.test("busyCpuSeconds() is null where /proc/stat cannot be read", async () => {
  // The bench runs with --allow-all, which reading /proc/stat needs; the smoke test above checks
  // that its runs report CPU seconds.
  assertEquals(await busyCpuSeconds("/nonexistent/stat"), null);
});
