/**
 * `deno task compile [--target TARGET] [--out DIR]`: standalone ferry executables.
 *
 * Builds `DIR/ferry-TARGET` (`.exe` on Windows) for every target, or just one, with
 * `deno compile`, and records their SHA-256 digests in `DIR/SHA256SUMS` (the format of
 * `sha256sum`, merged with the lines already there for other targets). The binary for this
 * machine is run once after building to check that `--version` prints `ferry VERSION`.
 *
 * `deno compile` needs a runtime base ("denort") for each target, which it downloads on first
 * use and keeps in the Deno cache (DENO_DIR). Offline, point DENORT_BIN at one for a single
 * --target, or seed the cache on a machine with internet access. See docs/STANDALONE.md.
 *
 * Exit codes: 0 built, 1 a build failed, 2 usage.
 */
import { createHash } from "node:crypto";
import { basename, isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { V8_FLAGS } from "../src/cli/v8_flags.ts";
import { permissionFlags } from "../src/cli/permission_set.ts";
import { VERSION } from "../src/version.ts";

/**
 * The permissions baked into every binary: the one set ferry ships (deno.json
 * `permissions.ferry`, src/cli/permission_set.ts), as flags, and no prompt. What each
 * permission is for is said there; no --allow-run, no other native library, no --include.
 */
export const PERMISSIONS: readonly string[] = [...permissionFlags(), "--no-prompt"];

/** Every target `deno task compile` builds, in the order it builds them (this machine's first). */
export const TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
  "x86_64-pc-windows-msvc",
] as const;
export type Target = typeof TARGETS[number];

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const ENTRY = join(ROOT, "main.ts");
export const DEFAULT_OUT = join(ROOT, "dist");
const USAGE = `usage: deno task compile [--target ${TARGETS.join("|")}] [--out DIR]`;

export function isTarget(value: string): value is Target {
  return (TARGETS as readonly string[]).includes(value);
}

/** The target of the machine running this, if ferry is built for it. */
export function hostTarget(): Target | null {
  return isTarget(Deno.build.target) ? Deno.build.target : null;
}

/** The file name of the binary for `target`. */
export function binaryName(target: Target): string {
  return `ferry-${target}${target.includes("windows") ? ".exe" : ""}`;
}

/** A build failed; `message` is one line for people, `detail` is what deno printed, if useful. */
export class CompileError extends Error {
  constructor(message: string, readonly detail = "", readonly noBase = false) {
    super(message);
    this.name = "CompileError";
  }
}

/** True when deno compile's failure is that it had no runtime base (denort) for the target. */
export function isMissingBase(stderr: string): boolean {
  return stderr.includes("Setting up base binary") ||
    stderr.includes("Could not find denort") ||
    (/denort-[\w-]+\.zip/.test(stderr) && /error sending request|dns error|connect/i.test(stderr));
}

/** The one sentence said when no runtime base could be had. */
export function noBaseMessage(target: Target): string {
  return `no Deno runtime base (denort ${Deno.version.deno}) could be had for target ${target} ` +
    `(deno compile downloads it on first use, and could not): set DENORT_BIN=/path/to/denort ` +
    `and build with --target ${target}, or run 'deno task compile' once on a machine with ` +
    `internet access to seed the Deno cache (DENO_DIR).`;
}

/** The `deno compile` arguments for `target`: ferry's V8 flags and PERMISSIONS baked in. */
export function compileArgs(target: Target, output: string): string[] {
  return ["compile", "--target", target, "--output", output, V8_FLAGS, ...PERMISSIONS, ENTRY];
}

/**
 * Builds the binary for `target` into `outDir` with `deno compile` (type checking on, the
 * permissions above baked in) and returns its path. DENORT_BIN and DENO_DIR reach deno compile
 * through the environment. Throws CompileError, with `noBase` set when the runtime base is
 * missing.
 */
export async function compileTarget(target: Target, outDir: string): Promise<string> {
  await Deno.mkdir(outDir, { recursive: true });
  const output = join(outDir, binaryName(target));
  const out = await new Deno.Command(Deno.execPath(), {
    args: compileArgs(target, output),
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  if (out.code !== 0) {
    if (isMissingBase(stderr)) throw new CompileError(noBaseMessage(target), stderr, true);
    throw new CompileError(`deno compile failed for target ${target}`, stderr);
  }
  return output;
}

/** Runs `binary --version` and throws unless it prints `ferry VERSION`. */
export async function verifyVersion(binary: string): Promise<void> {
  let printed: string;
  try {
    const out = await new Deno.Command(binary, {
      args: ["--version"],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(30_000),
    }).output();
    printed = new TextDecoder().decode(out.stdout).trim();
  } catch (err) {
    printed = `nothing (${err instanceof Error ? err.message : err})`;
  }
  if (printed !== `ferry ${VERSION}`) {
    throw new CompileError(
      `${binary} --version printed '${printed.split("\n")[0]}', not 'ferry ${VERSION}' ` +
        `(if DENORT_BIN is set, it must be a denort binary, not deno)`,
    );
  }
}

/** SHA-256 of a file, in hex, read as a stream. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  using file = await Deno.open(path);
  for await (const chunk of file.readable) hash.update(chunk);
  return hash.digest("hex");
}

/**
 * Adds `digests` (file name → hex) to `outDir/SHA256SUMS`, keeping the lines for other files
 * that still exist there, sorted by name; written atomically.
 */
export async function updateSums(outDir: string, digests: Map<string, string>): Promise<string> {
  const path = join(outDir, "SHA256SUMS");
  const lines = new Map<string, string>();
  try {
    for (const line of (await Deno.readTextFile(path)).split("\n")) {
      const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line.trim());
      const [, digest, file] = m ?? [];
      if (digest === undefined || file === undefined || basename(file) !== file) continue;
      try {
        if ((await Deno.stat(join(outDir, file))).isFile) lines.set(file, digest);
      } catch { /* the file is gone: drop its line */ }
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  for (const [name, hex] of digests) lines.set(name, hex);
  const text = [...lines].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
    .map(([name, hex]) => `${hex}  ${name}\n`).join("");
  const tmp = `${path}.tmp-${Deno.pid}`;
  await Deno.writeTextFile(tmp, text);
  await Deno.rename(tmp, path);
  return path;
}

class Usage extends Error {}

function parseArgs(args: string[]): { targets: Target[]; out: string } {
  let target: string | undefined;
  let out: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!; // i < args.length
    const eq = arg.indexOf("=");
    const name = arg.startsWith("--") && eq > 0 ? arg.slice(0, eq) : arg;
    if (name === "--target" || name === "--out") {
      const value = eq > 0 && arg.startsWith("--") ? arg.slice(eq + 1) : args[++i];
      if (value === undefined || value === "") throw new Usage(`${name} needs a value; ${USAGE}`);
      if (name === "--target") target = value;
      else out = value;
    } else if (arg === "--help" || arg === "-h") {
      throw new Usage(USAGE);
    } else {
      throw new Usage(`unexpected argument '${arg}'; ${USAGE}`);
    }
  }
  if (target !== undefined && !isTarget(target)) {
    throw new Usage(`unknown target '${target}' (one of: ${TARGETS.join(", ")})`);
  }
  const denort = Deno.env.get("DENORT_BIN");
  if (denort && target === undefined) {
    throw new Usage(
      `DENORT_BIN is a runtime base for one target, so it needs --target (e.g. --target ${
        hostTarget() ?? TARGETS[0]
      })`,
    );
  }
  // `deno task` runs in the project folder; a relative --out is meant from where it was typed.
  const cwd = Deno.env.get("INIT_CWD") ?? Deno.cwd();
  const host = hostTarget();
  const targets: Target[] = target !== undefined
    ? [target as Target]
    : host
    ? [host, ...TARGETS.filter((t) => t !== host)]
    : [...TARGETS];
  return {
    targets,
    out: out === undefined ? DEFAULT_OUT : isAbsolute(out) ? out : resolve(cwd, out),
  };
}

export async function main(args: string[]): Promise<number> {
  let targets: Target[];
  let out: string;
  try {
    ({ targets, out } = parseArgs(args));
  } catch (err) {
    if (!(err instanceof Usage)) throw err;
    if (err.message === USAGE) {
      console.log(USAGE);
      return 0;
    }
    console.error(`compile: ${err.message}`);
    return 2;
  }
  const denort = Deno.env.get("DENORT_BIN");
  if (denort) {
    let isFile = false;
    try {
      isFile = (await Deno.stat(denort)).isFile;
    } catch { /* missing */ }
    if (!isFile) {
      console.error(
        `compile: DENORT_BIN=${denort} is not a file; point it at a denort ${Deno.version.deno} ` +
          `binary built for ${targets[0]}, or unset it.`,
      );
      return 1;
    }
  }
  const digests = new Map<string, string>();
  let code = 0;
  for (const target of targets) {
    try {
      const binary = await compileTarget(target, out);
      if (target === hostTarget()) {
        try {
          await verifyVersion(binary);
        } catch (err) {
          await Deno.remove(binary).catch(() => {});
          throw err;
        }
      }
      const hex = await sha256File(binary);
      digests.set(basename(binary), hex);
      const size = (await Deno.stat(binary)).size;
      const checked = target === hostTarget() ? `, --version ok` : "";
      console.log(`built ${binary} (${(size / 1e6).toFixed(1)} MB${checked})`);
    } catch (err) {
      if (!(err instanceof CompileError)) throw err;
      if (err.detail && !err.noBase) console.error(err.detail.trimEnd());
      console.error(`compile: ${err.message}`);
      code = 1;
      break;
    }
  }
  if (digests.size > 0) console.log(`wrote ${await updateSums(out, digests)}`);
  return code;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
