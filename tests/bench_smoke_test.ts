/**
 * Smoke test of scripts/bench.ts on tiny data (ferry only, on disk, no apt),
 * so that the benchmark cannot rot while ferry changes.
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { join } from "node:path";
import { busyCpuSeconds, parseBusyCpuSeconds } from "../scripts/bench.ts";

const BENCH = new URL("../scripts/bench.ts", import.meta.url).pathname;

interface BenchJson {
  results: {
    tool: string;
    workload: string;
    placement: string;
    ok: number;
    runs: number;
    medianCpuSeconds: number | null;
  }[];
  machine: { cpus: number; kernel: string };
  startupSeconds: { median: number | null };
}

Deno.test("bench.ts --quick runs every workload for ferry and writes JSON", async () => {
  const out = await Deno.makeTempDir({ prefix: "ferry-bench-smoke-" });
  try {
    const run = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        "--allow-all",
        BENCH,
        "--quick",
        "--runs",
        "1",
        "--tools",
        "ferry",
        "--placements",
        "disk",
        "--no-install",
        "--out",
        out,
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    const stdout = new TextDecoder().decode(run.stdout);
    const stderr = new TextDecoder().decode(run.stderr);
    assertEquals(run.code, 0, `stdout:\n${stdout}\nstderr:\n${stderr}`);
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

    const files = [...Deno.readDirSync(out)].map((e) => e.name).filter((n) => n.endsWith(".json"));
    assertEquals(files.length, 1, `JSON files in ${out}: ${files}`);
    const report: BenchJson = JSON.parse(await Deno.readTextFile(join(out, files[0])));
    assertEquals(report.results.map((r) => `${r.tool}/${r.workload}/${r.placement}`), [
      "ferry/big/disk",
      "ferry/small/disk",
      "ferry/mixed/disk",
    ]);
    assert(report.results.every((r) => r.ok === 1 && r.runs === 1));
    // Each run sends and receives: the machine was busy for some of it.
    assert(report.results.every((r) => (r.medianCpuSeconds ?? 0) > 0), JSON.stringify(report));
    assert(report.machine.cpus > 0 && report.machine.kernel !== "");
    assert((report.startupSeconds.median ?? 0) > 0);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
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
