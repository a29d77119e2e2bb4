/**
 * Child processes: spawning them (every one tracked, so that it can be
 * stopped by its PID), timing a run of them, the CPU seconds the machine
 * spent meanwhile (/proc/stat) and a process's peak RSS.
 */
import { join } from "node:path";

/** Children still running: stopped on exit. */
const liveProcesses = new Set<Proc>();
/** Set by Ctrl+C: nothing new starts, the measurement loop stops. */
let interrupted = false;

export class Interrupted extends Error {
  constructor() {
    super("interrupted");
  }
}

/** Whether Ctrl+C (or SIGTERM) has stopped the bench. */
export function isInterrupted(): boolean {
  return interrupted;
}

/** From now on no process starts (Proc throws Interrupted). */
export function markInterrupted(): void {
  interrupted = true;
}

export interface SpawnOptions {
  /** Runs the command as a new session (via setsid) so a pipeline is stopped as a whole. */
  group?: boolean;
  env?: Record<string, string>;
}

/** A child process whose output is collected (the last 64 KiB) and which can be stopped. */
export class Proc {
  readonly pid: number;
  readonly status: Promise<Deno.CommandStatus>;
  #child: Deno.ChildProcess;
  #group: boolean;
  #output = "";
  #exited = false;

  constructor(command: string, args: string[], opts: SpawnOptions = {}) {
    if (interrupted) throw new Interrupted();
    this.#group = opts.group ?? false;
    const [cmd, argv] = this.#group ? ["setsid", [command, ...args]] : [command, args];
    this.#child = new Deno.Command(cmd, {
      args: argv,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1", ...opts.env },
    }).spawn();
    this.pid = this.#child.pid;
    liveProcesses.add(this);
    const drained = Promise.all([
      this.#drain(this.#child.stdout),
      this.#drain(this.#child.stderr),
    ]);
    this.status = this.#child.status.then(async (status) => {
      this.#exited = true;
      liveProcesses.delete(this);
      await drained;
      return status;
    });
  }

  get output(): string {
    return this.#output;
  }

  get exited(): boolean {
    return this.#exited;
  }

  /** SIGTERM (the whole group, for a pipeline), then SIGKILL after 5 s. */
  async stop(): Promise<void> {
    if (this.#exited) return;
    this.#signal("SIGTERM");
    const stopped = await within(this.status, 5_000);
    if (stopped === null) this.#signal("SIGKILL");
    await this.status;
  }

  #signal(signal: Deno.Signal): void {
    try {
      if (this.#group) Deno.kill(-this.pid, signal);
      else this.#child.kill(signal);
    } catch { /* already gone */ }
  }

  async #drain(stream: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      this.#output = (this.#output + decoder.decode(chunk, { stream: true })).slice(-64 * 1024);
    }
  }
}

/** Stops every child still running. */
export async function stopAllProcesses(): Promise<void> {
  await Promise.all([...liveProcesses].map((proc) => proc.stop()));
}

/** `promise`'s value, or null if it takes longer than `ms`. */
export async function within<T>(promise: Promise<T>, ms: number): Promise<T | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs a command to completion and returns its stdout and stderr (for versions, keygen...). */
export async function capture(
  command: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ ok: boolean; text: string }> {
  try {
    const out = await new Deno.Command(command, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env,
    }).output();
    const decoder = new TextDecoder();
    return { ok: out.success, text: decoder.decode(out.stdout) + decoder.decode(out.stderr) };
  } catch (err) {
    return { ok: false, text: errorText(err) };
  }
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The last line of a command's output: usually the reason it failed. */
export function lastLine(text: string): string {
  return text.trim().split("\n").at(-1) ?? "";
}

export function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

const SEARCH_DIRS = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/** The path of an executable named `name` on PATH or in the usual folders, or null. */
export function findExecutable(name: string): string | null {
  const dirs = [...(Deno.env.get("PATH") ?? "").split(":"), ...SEARCH_DIRS];
  for (const dir of dirs) {
    if (dir === "") continue;
    try {
      const info = Deno.statSync(join(dir, name));
      if (info.isFile && ((info.mode ?? 0) & 0o111) !== 0) return join(dir, name);
    } catch { /* not here */ }
  }
  return null;
}

export function isRoot(): boolean {
  return Deno.uid() === 0;
}

// ---------------------------------------------------------------------------
// Timing a run

export interface Timed {
  seconds: number;
  error: string | null;
  /** CPU time the whole machine spent during the run (null where /proc/stat cannot be read). */
  cpuSeconds: number | null;
}

/**
 * Starts `procs()` and times them until all exit; a non-zero exit or a
 * timeout is an error. Also takes the machine's busy CPU time over the same
 * span, so that it counts the servers' share (ferry serve, the rsync daemon,
 * nc -l, the wormhole relays) as well as the sending command's.
 */
export async function timeProcesses(start: () => Proc[], timeoutMs: number): Promise<Timed> {
  const cpuBefore = await busyCpuSeconds();
  const began = performance.now();
  const procs = start();
  const all = Promise.all(procs.map((p) => p.status));
  const statuses = await within(all, timeoutMs);
  const seconds = (performance.now() - began) / 1000;
  const cpuAfter = await busyCpuSeconds();
  const cpuSeconds = cpuBefore === null || cpuAfter === null ? null : cpuAfter - cpuBefore;
  if (statuses === null) {
    await Promise.all(procs.map((p) => p.stop()));
    return { seconds, error: `timed out after ${timeoutMs / 1000} s`, cpuSeconds };
  }
  const failed = statuses.findIndex((s) => !s.success);
  if (failed === -1) return { seconds, error: null, cpuSeconds };
  const output = procs[failed]!.output.trim().split("\n").slice(-3).join(" / ");
  return { seconds, error: `exit code ${statuses[failed]!.code}: ${output}`, cpuSeconds };
}

/** USER_HZ: the unit of /proc/stat's times, 100 on every Linux architecture ferry builds for. */
const CLOCK_TICKS_PER_SECOND = 100;

/**
 * CPU seconds every CPU of the machine has spent busy since boot, from the
 * first line of /proc/stat (user, nice, system, irq, softirq; not idle,
 * iowait or time stolen by a hypervisor); null where /proc/stat is missing or
 * cannot be read (Deno lets only --allow-all read it).
 */
export async function busyCpuSeconds(statPath = "/proc/stat"): Promise<number | null> {
  try {
    return parseBusyCpuSeconds(await Deno.readTextFile(statPath));
  } catch {
    return null;
  }
}

/** busyCpuSeconds' parse of /proc/stat's text; null if its first line is not the CPU total. */
export function parseBusyCpuSeconds(stat: string): number | null {
  const end = stat.indexOf("\n");
  const fields = (end === -1 ? stat : stat.slice(0, end)).trim().split(/\s+/);
  if (fields[0] !== "cpu" || fields.length < 8) return null;
  // fields has at least 8 entries (checked above).
  const [user, nice, system, , , irq, softirq] = fields.slice(1, 8).map(Number) as number[];
  const busy = user! + nice! + system! + irq! + softirq!;
  return Number.isFinite(busy) ? busy / CLOCK_TICKS_PER_SECOND : null;
}

// ---------------------------------------------------------------------------
// Peak RSS

const TIME = findExecutable("time") !== null ? "/usr/bin/time" : null;

/**
 * One process's peak RSS: `/usr/bin/time -f %M` around it or, without
 * /usr/bin/time, the highest VmHWM polled from /proc/PID/status while it runs.
 */
export class PeakRss {
  #file: string;
  #peak: Promise<number | null> = Promise.resolve(null);

  private constructor(file: string) {
    this.#file = file;
  }

  static async prepare(): Promise<PeakRss> {
    return new PeakRss(await Deno.makeTempFile({ prefix: "ferry-bench-rss-" }));
  }

  /** Starts `command` with its peak RSS measured. */
  spawn(command: string, args: string[], opts: SpawnOptions = {}): Proc {
    if (TIME) return new Proc(TIME, ["-f", "%M", "-o", this.#file, command, ...args], opts);
    const proc = new Proc(command, args, opts);
    this.#peak = pollPeakRss(proc);
    return proc;
  }

  /** The peak in KiB once the process has exited, or null; removes the temporary file. */
  async kib(): Promise<number | null> {
    const kib = TIME ? await readRssFile(this.#file) : await this.#peak;
    await Deno.remove(this.#file).catch(() => {});
    return kib;
  }
}

async function readRssFile(path: string): Promise<number | null> {
  const text = await Deno.readTextFile(path).catch(() => "");
  const kib = Number(text.trim().split("\n").at(-1));
  return Number.isFinite(kib) && kib > 0 ? kib : null;
}

/** Without /usr/bin/time: the highest VmHWM seen while `proc` runs. */
async function pollPeakRss(proc: Proc): Promise<number | null> {
  let peak: number | null = null;
  while (!proc.exited) {
    const hwm = await readVmHwm(proc.pid);
    if (hwm !== null) peak = Math.max(peak ?? 0, hwm);
    await sleep(20);
  }
  return peak;
}

/** A running process's peak RSS so far (VmHWM), in KiB. */
export async function readVmHwm(pid: number): Promise<number | null> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`).catch(() => "");
  const match = /^VmHWM:\s+(\d+) kB/m.exec(status);
  return match ? Number(match[1]) : null;
}

/** Resets a process's VmHWM (Linux: write 5 to clear_refs); false if not allowed. */
export async function resetVmHwm(pid: number): Promise<boolean> {
  try {
    await Deno.writeTextFile(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}
