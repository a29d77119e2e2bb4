/**
 * Standalone executables (`deno task compile`, scripts/compile.ts).
 *
 * When a Deno runtime base ("denort") can be had (DENORT_BIN, the Deno cache, or a download),
 * the end-to-end test builds the binary for this machine and runs it, `serve` and `send`, with
 * no `deno` on PATH. Without one that test skips its run (an ignored step that names the
 * reason, which it also prints), and the script is checked to say so in one sentence. Usage
 * mistakes are checked either way. Nothing is built when the file loads.
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
import {
  contents,
  freePort,
  randomBytes,
  snapshot,
  tempDir,
  TEST_CODE,
  writeTree,
} from "./_harness.ts";

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

/** This machine's binary, built on demand, or why there is none. */
interface Build {
  /** The binary, or null. */
  binary: string | null;
  /** A failure that is not "no runtime base": the end-to-end test reports it. */
  error: unknown;
  /** Why there is neither a binary nor an error: the end-to-end test is skipped for it. */
  skipReason: string;
}

/** Builds this machine's binary in `dir`, when the test that runs it starts (not at load). */
async function buildHost(dir: string): Promise<Build> {
  const host = hostTarget();
  if (host === null) {
    return {
      binary: null,
      error: null,
      skipReason: `ferry is not built for this machine (${Deno.build.target})`,
    };
  }
  try {
    const binary = await compileTarget(host, dir);
    assertEquals(binary, join(dir, binaryName(host)));
    return { binary, error: null, skipReason: "" };
  } catch (err) {
    if (!(err instanceof CompileError && err.noBase)) {
      return { binary: null, error: err, skipReason: "" };
    }
    const denort = Deno.env.get("DENORT_BIN");
    const skipReason = "no Deno runtime base (denort) available; set DENORT_BIN" +
      (denort ? ` (DENORT_BIN=${denort} did not work)` : "");
    return { binary: null, error: null, skipReason };
  }
}

/** Marks the running test as skipped for `reason`, which it prints (a step cannot be run). */
async function skipped(t: Deno.TestContext, reason: string): Promise<void> {
  console.log(`compile_test: skipped: ${reason}`);
  await t.step({ name: `skipped: ${reason}`, ignore: true, fn() {} });
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
    ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
    env: { NO_COLOR: "1", ...opts.env },
    ...(opts.clearEnv === undefined ? {} : { clearEnv: opts.clearEnv }),
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
  async fn(t) {
    await using outDir = await tempDir("ferry-compile-out-");
    const out = outDir.path;
    const target: Target = "x86_64-unknown-linux-gnu";
    const result = await run(
      Deno.execPath(),
      ["run", ...SCRIPT_PERMISSIONS, SCRIPT, "--target", target, "--out", out],
      { env: envWithoutDenort(), clearEnv: true, cwd: ROOT },
    );
    if (result.code === 0) {
      return await skipped(t, "a runtime base was found without DENORT_BIN (the Deno cache)");
    }
    assertEquals(result.code, 1, result.stderr);
    assertEquals(result.stderr.trimEnd(), `compile: ${noBaseMessage(target)}`);
    assertNotMatch(result.stderr, /^ {4}at /m);
    assertNotMatch(result.stderr, /Stack backtrace/);
    assertStringIncludes(result.stderr, "DENORT_BIN");
    assertEquals([...Deno.readDirSync(out)].map((e) => e.name), []);
  },
});

Deno.test({
  name:
    "standalone binary: --version, then serve (with its web page) and send a tree byte for byte with no deno on PATH",
  async fn(t) {
    await using buildDir = await tempDir("ferry-compile-");
    const { binary, error, skipReason } = await buildHost(buildDir.path);
    if (error !== null) {
      if (error instanceof CompileError) throw new Error(`${error.message}\n${error.detail}`);
      throw error;
    }
    if (binary === null) return await skipped(t, skipReason);
    const bin = binary;
    await using baseDir = await tempDir();
    const base = baseDir.path;
    // An empty folder as the whole PATH: nothing, deno included, can be found through it.
    const emptyBin = join(base, "empty-bin");
    await Deno.mkdir(emptyBin);
    const env = { PATH: emptyBin, NO_COLOR: "1", FERRY_CODE: TEST_CODE };

    const version = await run(bin, ["--version"], { env, clearEnv: true });
    assertEquals(version.code, 0, version.stderr);
    assertEquals(version.stdout.trim(), `ferry ${VERSION}`);

    const src = join(base, "tree");
    const inbox = join(base, "inbox");
    await writeTree(src, {
      "a/b/c/random.bin": randomBytes(200_000),
      "a/b/small.bin": randomBytes(1_000),
      "a/notes — ünïcødé.txt": "grüße\n",
      "empty": { dir: true },
      "zero.bin": new Uint8Array(0),
    });
    const port = freePort();
    const webPort = freePort();
    const serve = new Deno.Command(bin, {
      args: [
        "serve",
        inbox,
        "--port",
        String(port),
        "--host",
        "127.0.0.1",
        "--web",
        "--web-port",
        String(webPort),
      ],
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
      while (!output.includes("press Ctrl+C")) {
        if (Date.now() > deadline) throw new Error(`serve did not start:\n${output}`);
        await new Promise((r) => setTimeout(r, 25));
      }
      // The binary serves the page, bundled into it.
      const page = await fetch(`http://127.0.0.1:${webPort}/`);
      assertEquals(page.status, 200);
      assertStringIncludes(await page.text(), "<title>ferry: send files</title>");
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
  },
});
