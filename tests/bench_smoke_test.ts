/**
 * Smoke test of scripts/bench.ts on tiny data (ferry only, on disk, no apt),
 * so that the benchmark cannot rot while ferry changes.
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { join } from "node:path";

const BENCH = new URL("../scripts/bench.ts", import.meta.url).pathname;

interface BenchJson {
  results: { tool: string; workload: string; placement: string; ok: number; runs: number }[];
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
    assertMatch(stdout, /^\| tool \| workload \| placement \|/m);
    for (const workload of ["big", "small", "mixed"]) {
      assertMatch(stdout, new RegExp(`^\\| ferry \\| ${workload} \\| disk \\| 1/1 \\| \\d`, "m"));
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
    assert(report.machine.cpus > 0 && report.machine.kernel !== "");
    assert((report.startupSeconds.median ?? 0) > 0);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
