/**
 * Standalone executables (`deno task compile`, scripts/compile.ts).
 *
 * When a Deno runtime base ("denort") can be had (DENORT_BIN, the Deno cache, or a download),
 * the binary for this machine is built once and run end to end, `serve` and `send`, with no
 * `deno` on PATH. Without one that test is skipped, with the reason printed, and the script is
 * checked to say so in one sentence. Usage mistakes are checked either way.
 */
import { assertEquals, assertNotMatch, assertStringIncludes } from "@std/assert";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  binaryName,
  CompileError,
  compileTarget,
  hostTarget,
  noBaseMessage,
  type Target,
} from "../scripts/compile.ts";
import { VERSION } from "../src/version.ts";
import { freePort, randomBytes, snapshot, tempDir, TEST_CODE } from "./_harness.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SCRIPT = join(ROOT, "scripts", "compile.ts");
/** The permissions `deno task compile` runs the script with (deno.json). */
const SCRIPT_PERMISSIONS = [
  "--allow-read",
  "--allow-write",
  "--allow-run",
  "--allow-env",
  "--allow-net",
];

// Probe once, at load: try to build this machine's binary. It is reused by the end-to-end test.
const host = hostTarget();
const buildDir = await tempDir("ferry-compile-");
let binary: string | null = null;
/** A failure that is not "no runtime base": the end-to-end test reports it. */
let buildError: unknown = null;
let skipReason = "";
if (host === null) {
  skipReason = `ferry is not built for this machine (${Deno.build.target})`;
} else {
  try {
    binary = await compileTarget(host, buildDir);
  } catch (err) {
    if (err instanceof CompileError && err.noBase) {
      const denort = Deno.env.get("DENORT_BIN");
      skipReason = "no Deno runtime base (denort) available; set DENORT_BIN" +
        (denort ? ` (DENORT_BIN=${denort} did not work)` : "");
    } else {
      buildError = err;
    }
  }
}
const available = binary !== null || buildError !== null;
if (!available) {
  console.log(`compile_test: skipped: ${skipReason}`);
  await Deno.remove(buildDir, { recursive: true });
}

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(
  command: string,
  args: string[],
  opts: { env?: Record<string, string>; clearEnv?: boolean; cwd?: string } = {},
): Promise<Result> {
  const out = await new Deno.Command(command, {
    args,
    cwd: opts.cwd,
    env: { NO_COLOR: "1", ...opts.env },
    clearEnv: opts.clearEnv,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/** The environment without DENORT_BIN, so that no runtime base is offered. */
function envWithoutDenort(): Record<string, string> {
  const env = Deno.env.toObject();
  delete env.DENORT_BIN;
  return env;
}

async function writeTree(root: string): Promise<void> {
  await Deno.mkdir(join(root, "a/b/c"), { recursive: true });
  await Deno.mkdir(join(root, "empty"));
  await Deno.writeFile(join(root, "zero.bin"), new Uint8Array(0));
  await Deno.writeTextFile(join(root, "a/notes — ünïcødé.txt"), "grüße\n");
  await Deno.writeFile(join(root, "a/b/c/random.bin"), randomBytes(200_000));
  await Deno.writeFile(join(root, "a/b/small.bin"), randomBytes(1_000));
}

/** Content only: kind, size and SHA-256 of every entry (metadata is other tests' business). */
function contents(tree: Awaited<ReturnType<typeof snapshot>>) {
  return Object.fromEntries(
    Object.entries(tree).map(([path, e]) => [path, { kind: e.kind, size: e.size, sha: e.sha256 }]),
  );
}

Deno.test("deno task compile --target bogus: usage error, exit 2, one line", async () => {
  const out = await run(Deno.execPath(), ["task", "--quiet", "compile", "--target", "bogus"], {
    cwd: ROOT,
  });
  assertEquals(out.code, 2, out.stderr);
  assertEquals(out.stdout, "");
  const lines = out.stderr.trimEnd().split("\n");
  assertEquals(lines.length, 1, out.stderr);
  assertStringIncludes(lines[0], "unknown target 'bogus'");
  assertStringIncludes(lines[0], "x86_64-unknown-linux-gnu");
});

Deno.test({
  name: "compile without a runtime base: exit 1, one clear sentence, no stack trace",
  ignore: binary !== null,
  async fn() {
    const out = await tempDir("ferry-compile-out-");
    try {
      const target: Target = "x86_64-unknown-linux-gnu";
      const result = await run(
        Deno.execPath(),
        ["run", ...SCRIPT_PERMISSIONS, SCRIPT, "--target", target, "--out", out],
        { env: envWithoutDenort(), clearEnv: true, cwd: ROOT },
      );
      assertEquals(result.code, 1, result.stderr);
      assertEquals(result.stderr.trimEnd(), `compile: ${noBaseMessage(target)}`);
      assertNotMatch(result.stderr, /^ {4}at /m);
      assertNotMatch(result.stderr, /Stack backtrace/);
      assertStringIncludes(result.stderr, "DENORT_BIN");
      assertEquals([...Deno.readDirSync(out)].map((e) => e.name), []);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "standalone binary: --version, then serve and send a tree byte for byte with no deno on PATH",
  ignore: !available,
  async fn() {
    try {
      if (buildError !== null) {
        if (buildError instanceof CompileError) {
          throw new Error(`${buildError.message}\n${buildError.detail}`);
        }
        throw buildError;
      }
      if (binary === null || host === null) throw new Error("unreachable: no binary was built");
      const bin = binary;
      assertEquals(bin, join(buildDir, binaryName(host)));
      const base = await tempDir();
      // An empty folder as the whole PATH: nothing, deno included, can be found through it.
      const emptyBin = join(base, "empty-bin");
      await Deno.mkdir(emptyBin);
      const env = { PATH: emptyBin, NO_COLOR: "1", FERRY_CODE: TEST_CODE };

      const version = await run(bin, ["--version"], { env, clearEnv: true });
      assertEquals(version.code, 0, version.stderr);
      assertEquals(version.stdout.trim(), `ferry ${VERSION}`);

      const src = join(base, "tree");
      const inbox = join(base, "inbox");
      await writeTree(src);
      const port = freePort();
      const serve = new Deno.Command(bin, {
        args: ["serve", inbox, "--port", String(port), "--host", "127.0.0.1"],
        clearEnv: true,
        env,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      let output = "";
      const decoder = new TextDecoder();
      const pump = async (stream: ReadableStream<Uint8Array>) => {
        for await (const chunk of stream) output += decoder.decode(chunk, { stream: true });
      };
      const pumping = Promise.all([pump(serve.stdout), pump(serve.stderr)]);
      let stopped = false;
      try {
        const deadline = Date.now() + 15_000;
        while (!output.includes("listening on port")) {
          if (Date.now() > deadline) throw new Error(`serve did not start:\n${output}`);
          await new Promise((r) => setTimeout(r, 25));
        }
        const sent = await run(bin, ["send", src, "--to", `127.0.0.1:${port}`], {
          env,
          clearEnv: true,
        });
        assertEquals(sent.code, 0, sent.stdout + sent.stderr);
        assertEquals(contents(await snapshot(join(inbox, "tree"))), contents(await snapshot(src)));
        serve.kill("SIGTERM");
        stopped = true;
        assertEquals((await serve.status).code, 0, output);
      } finally {
        if (!stopped) {
          try {
            serve.kill("SIGKILL");
          } catch { /* already gone */ }
          await serve.status;
        }
        await pumping;
      }
      await Deno.remove(base, { recursive: true });
    } finally {
      await Deno.remove(buildDir, { recursive: true });
    }
  },
});
