/**
 * The release workflow (.github/workflows/release.yml) builds exactly the
 * targets `deno task compile` knows (scripts/compile.ts TARGETS), each on a
 * runner that can run it, checks each binary there, and attaches them all
 * with SHA256SUMS. (.ci/run validates the file against GitHub's schema.)
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
// deno-std's YAML parser: the same package as @std/assert, so nothing new in deno.lock.
import { parse } from "npm:deno-std@1.4.0/yaml/mod.js";
import { binaryName, type Target, TARGETS } from "../scripts/compile.ts";
import { defined } from "./_expect.ts";

const WORKFLOW = new URL("../.github/workflows/release.yml", import.meta.url);
const CI = new URL("../.ci/run", import.meta.url);

interface Step {
  name?: string;
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
}
/** One build of the matrix (the tests below check each field). */
interface MatrixEntry {
  target: string;
  runner: string;
  binary: string;
}
interface Job {
  "runs-on": string;
  needs?: string | string[];
  permissions?: Record<string, string>;
  strategy?: { matrix: { include: MatrixEntry[] } };
  steps: Step[];
}
interface Workflow {
  on: { push: { tags: string[] } };
  env: Record<string, string>;
  jobs: Record<string, Job>;
}

const workflow = parse(await Deno.readTextFile(WORKFLOW)) as Workflow;

/** The workflow's job `name`, which must be there. */
function job(name: string): Job {
  return defined(workflow.jobs[name], `release.yml's job ${name}`);
}

/** The GitHub-hosted runners whose OS and CPU run each target's binary natively. */
const NATIVE: Record<Target, string[]> = {
  "x86_64-unknown-linux-gnu": ["ubuntu-latest", "ubuntu-24.04", "ubuntu-22.04"],
  "aarch64-unknown-linux-gnu": ["ubuntu-24.04-arm", "ubuntu-22.04-arm"],
  "x86_64-apple-darwin": ["macos-15-intel", "macos-13"],
  "aarch64-apple-darwin": ["macos-14", "macos-15", "macos-latest"],
  "x86_64-pc-windows-msvc": ["windows-latest", "windows-2025", "windows-2022"],
};

Deno.test("release.yml runs on v* tags and builds compile.ts's five targets, one each", () => {
  assertEquals(workflow.on.push.tags, ["v*"]);
  const include = job("build").strategy!.matrix.include;
  assertEquals(include.map((e) => e.target).sort(), [...TARGETS].sort());
  assertEquals(new Set(include.map((e) => e.target)).size, TARGETS.length);
  assertEquals(Object.keys(NATIVE).sort(), [...TARGETS].sort());
  for (const entry of include) {
    const target = entry.target as Target; // include's targets are TARGETS (asserted above)
    assertEquals(entry.binary, binaryName(target), entry.target);
    assert(
      NATIVE[target].includes(entry.runner),
      `${entry.target} on ${entry.runner}: that runner cannot run the binary`,
    );
  }
  assertEquals(job("build")["runs-on"], "${{ matrix.runner }}");
});

Deno.test("each build job builds with deno task compile and runs its binary: --version and a loopback transfer", () => {
  const runs = job("build").steps.map((s) => s.run ?? "").join("\n");
  assertStringIncludes(runs, 'task compile --target "${{ matrix.target }}" --out dist');
  assertStringIncludes(runs, "--version");
  assertStringIncludes(runs, "FERRY_CODE=");
  assertStringIncludes(runs, "serve inbox --host 127.0.0.1");
  assertStringIncludes(runs, "send payload.bin --to 127.0.0.1:");
  assertStringIncludes(runs, "cmp src/payload.bin inbox/payload.bin");
  // The same Deno as the README and CI.
  const ci = Deno.readTextFileSync(CI);
  assertStringIncludes(ci, `DENO_VERSION=${workflow.env.DENO_VERSION}\n`);
  assertStringIncludes(runs, 'npx -y "deno@${DENO_VERSION}"');
});

Deno.test("the release job waits for every build and attaches the binaries with SHA256SUMS", () => {
  const release = job("release");
  assertEquals(release.needs, "build");
  assertEquals(release.permissions, { contents: "write" });
  const runs = release.steps.map((s) => s.run ?? "").join("\n");
  assertStringIncludes(runs, "sha256sum ferry-* > SHA256SUMS");
  assertStringIncludes(runs, `test "$(ls ferry-* | wc -l)" -eq ${TARGETS.length}`);
  assertStringIncludes(runs, "gh release upload");
});
