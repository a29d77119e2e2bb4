/**
 * The real CLI as a child process (`deno run main.ts ...`), with the shipped
 * permission set (tests/_permissions.ts) unless a test says otherwise: the one
 * way the tests start ferry.
 */
import { TEST_CODE } from "./_in_process.ts";
import { freePort } from "./_net.ts";
import { SHIPPED_PERMISSIONS } from "./_permissions.ts";

export const MAIN = new URL("../main.ts", import.meta.url).pathname;

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** Written to standard input, which is then closed; "piped": left open for the test to write. */
  stdin?: Uint8Array | "piped";
  cwd?: string;
  /** Added to NO_COLOR=1 and FERRY_CODE=TEST_CODE. */
  env?: Record<string, string>;
  /** The flags to run main.ts with (default: the shipped permission set). */
  permissions?: readonly string[];
}

/** The arguments of `deno` that run `ferry ARGS...` with `permissions`. */
export function denoArgs(
  args: readonly string[],
  permissions: readonly string[] = SHIPPED_PERMISSIONS,
): string[] {
  return ["run", "--quiet", ...permissions, MAIN, ...args];
}

/** A ferry child process whose output is collected as it comes. */
export interface RunningCli {
  child: Deno.ChildProcess;
  /** Everything printed on stdout so far. */
  stdout(): string;
  /** Everything printed on stderr so far. */
  stderr(): string;
  /** Everything printed so far on stdout and stderr. */
  output(): string;
  /** Waits for the end: the exit code, the signal that ended it if one did, everything printed. */
  done(): Promise<CliResult & { signal: Deno.Signal | null }>;
}

/** Starts `ferry ARGS...` without waiting for it to end. */
export function spawnCli(args: readonly string[], opts: CliOptions = {}): RunningCli {
  const child = new Deno.Command(Deno.execPath(), {
    args: denoArgs(args, opts.permissions),
    stdin: opts.stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
    ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
    env: { NO_COLOR: "1", FERRY_CODE: TEST_CODE, ...opts.env },
  }).spawn();
  const writing = opts.stdin instanceof Uint8Array
    ? writeAll(child.stdin, opts.stdin)
    : Promise.resolve();
  let stdout = "";
  let stderr = "";
  const pump = async (stream: ReadableStream<Uint8Array>, add: (s: string) => void) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) add(decoder.decode(chunk, { stream: true }));
  };
  const pumping = Promise.all([
    pump(child.stdout, (s) => stdout += s),
    pump(child.stderr, (s) => stderr += s),
  ]);
  const ended = (async () => {
    const status = await child.status;
    await pumping;
    await writing.catch(() => {});
    return { code: status.code, signal: status.signal, stdout, stderr };
  })();
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    output: () => stdout + stderr,
    done: () => ended,
  };
}

async function writeAll(stdin: WritableStream<Uint8Array>, data: Uint8Array): Promise<void> {
  const writer = stdin.getWriter();
  await writer.write(data);
  await writer.close();
}

/** Runs `ferry ARGS...` to completion. */
export async function runCli(args: readonly string[], opts: CliOptions = {}): Promise<CliResult> {
  const { code, stdout, stderr } = await spawnCli(args, opts).done();
  return { code, stdout, stderr };
}

export interface ServeProcess {
  port: number;
  child: Deno.ChildProcess;
  /** Everything printed so far on stdout and stderr. */
  output(): string;
  /** Everything printed so far on stdout. */
  stdout(): string;
  /** Everything printed so far on stderr. */
  stderr(): string;
  /** Sends `signal` (SIGTERM unless given) and waits for the end. */
  stop(signal?: Deno.Signal): Promise<CliResult>;
}

export interface ServeOptions extends Omit<CliOptions, "stdin"> {
  /** "piped": standard input is left open for the test to write (child.stdin). */
  stdin?: "piped";
  /** Whether serve is up, from its stdout so far (default: its banner is out). */
  ready?: (stdout: string) => boolean;
  /** The port (default: one that is free). */
  port?: number;
  /** How long serve may take to be ready (default 15 s). */
  startMs?: number;
}

/**
 * Starts `ferry serve DIR --port P --host 127.0.0.1 EXTRA...` and waits until
 * `ready` says its output shows it is up. If it is not up in time, it is
 * killed and the error shows what it printed.
 */
export async function spawnServe(
  dir: string,
  extra: readonly string[] = [],
  opts: ServeOptions = {},
): Promise<ServeProcess> {
  const port = opts.port ?? freePort();
  const ready = opts.ready ?? ((out: string) => out.includes("listening on port"));
  const running = spawnCli(
    ["serve", dir, "--port", String(port), "--host", "127.0.0.1", ...extra],
    opts,
  );
  const stop = async (signal: Deno.Signal = "SIGTERM"): Promise<CliResult> => {
    try {
      running.child.kill(signal);
    } catch { /* already gone */ }
    const { code, stdout, stderr } = await running.done();
    return { code, stdout, stderr };
  };
  const deadline = Date.now() + (opts.startMs ?? 15_000);
  while (!ready(running.stdout())) {
    if (Date.now() > deadline) {
      const out = await stop("SIGKILL");
      throw new Error(`serve did not start:\n${out.stdout}\n${out.stderr}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    port,
    child: running.child,
    output: running.output,
    stdout: running.stdout,
    stderr: running.stderr,
    stop,
  };
}
