/**
 * ferry's benchmark: `ferry send` → `ferry serve` against the tools people
 * already use to move files (nc, the rsync daemon with and without --fsync,
 * scp), all on 127.0.0.1, on a fresh tmpfs and on disk.
 *
 *   deno task bench [--quick] [--runs N] [--big-runs N] [--workloads big,small,mixed,huge,many]
 *                   [--placements tmpfs,disk] [--tools ferry,ferry-plain,ferry-xxh128,nc,rsync,rsync-fsync,scp]
 *                   [--no-install] [--out DIR] [--disk-dir DIR]
 *
 * It makes its own data, runs the tools round-robin (run i: every tool once),
 * checks every run (file count, total size, the first bytes of the largest
 * file; for ferry also exit code 0 and its summary), prints a markdown table
 * of medians and writes the same data as JSON. Every server and mount it
 * makes is undone before it exits, also on an error or Ctrl+C.
 * docs/PERFORMANCE.md explains the method.
 */
import { parseArgs } from "node:util";
import { join, relative } from "node:path";
import { V8_FLAGS } from "../src/cli/v8_flags.ts";

// ---------------------------------------------------------------------------
// Names and options

/**
 * ferry-plain: ferry without encryption (--open --plaintext), to measure what encryption costs.
 * ferry-xxh128: ferry with `send --digest xxh128` (to the same server as ferry).
 */
const TOOLS = [
  "ferry",
  "ferry-plain",
  "ferry-xxh128",
  "nc",
  "rsync",
  "rsync-fsync",
  "scp",
] as const;
const WORKLOADS = ["big", "small", "mixed", "huge", "many"] as const;
/**
 * What runs without --workloads. huge (one 4 GiB file) and many (100,000 files) are there for
 * issue 7's memory target and take a while: ask for them by name.
 */
const DEFAULT_WORKLOADS: readonly WorkloadName[] = ["big", "small", "mixed"];
const PLACEMENTS = ["tmpfs", "disk"] as const;
type Tool = typeof TOOLS[number];
type WorkloadName = typeof WORKLOADS[number];
type Placement = typeof PLACEMENTS[number];

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const DEFAULT_OUT = new URL("../bench/results/", import.meta.url).pathname;
const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const STARTUP_SAMPLES = 10;

interface Options {
  quick: boolean;
  runs: number;
  /** Runs of the 1 GiB and 4 GiB workloads (--big-runs; default --runs). */
  bigRuns: number;
  workloads: WorkloadName[];
  placements: Placement[];
  tools: Tool[];
  install: boolean;
  outDir: string;
  diskParent: string;
}

const USAGE =
  `usage: deno task bench [--quick] [--runs N] [--big-runs N] [--workloads big,small,mixed,huge,many]
         [--placements tmpfs,disk] [--tools ferry,ferry-plain,ferry-xxh128,nc,rsync,rsync-fsync,scp]
         [--no-install] [--out DIR] [--disk-dir DIR]`;

class UsageError extends Error {}

function parseOptions(args: string[]): Options {
  try {
    return optionsFrom(args);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(errorText(err).split("\n")[0]);
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
    workloads: parseList("--workloads", values.workloads, WORKLOADS, DEFAULT_WORKLOADS),
    placements: parseList("--placements", values.placements, PLACEMENTS),
    tools: parseList("--tools", values.tools, TOOLS),
    install: !(values["no-install"] ?? false),
    outDir: values.out ?? DEFAULT_OUT,
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

function tempParent(): string {
  return Deno.env.get("TMPDIR") ?? "/tmp";
}

// ---------------------------------------------------------------------------
// Processes: every child is tracked so that it can be stopped by its PID.

/** Children still running, tmpfs mounts still mounted and folders made: undone on exit. */
const liveProcesses = new Set<Proc>();
const liveMounts = new Set<string>();
const liveDirs = new Set<string>();
/** Set by Ctrl+C: nothing new starts, the measurement loop stops. */
let interrupted = false;

class Interrupted extends Error {
  constructor() {
    super("interrupted");
  }
}

interface SpawnOptions {
  /** Runs the command as a new session (via setsid) so a pipeline is stopped as a whole. */
  group?: boolean;
  env?: Record<string, string>;
}

/** A child process whose output is collected (the last 64 KiB) and which can be stopped. */
class Proc {
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
      this.#output = (this.#output + decoder.decode(chunk, { stream: true })).slice(-64 * KiB);
    }
  }
}

/** `promise`'s value, or null if it takes longer than `ms`. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | null> {
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

/** Runs a command to completion and returns its stdout and stderr (for versions, keygen...). */
async function capture(
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

/** Stops every child still running, unmounts every tmpfs and removes the folders it made. */
async function cleanUpEverything(): Promise<void> {
  await Promise.all([...liveProcesses].map((proc) => proc.stop()));
  for (const dir of [...liveMounts]) await unmountTmpfs(dir);
  for (const dir of [...liveDirs]) await removeMadeDir(dir);
}

/** A temporary folder of the bench's own, removed by cleanUpEverything if still there. */
async function makeOwnDir(parent: string, prefix: string): Promise<string> {
  const dir = await Deno.makeTempDir({ dir: parent, prefix });
  liveDirs.add(dir);
  return dir;
}

async function removeMadeDir(dir: string): Promise<void> {
  if (liveMounts.has(dir)) return; // never delete through a mount that is still there
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  liveDirs.delete(dir);
}

function installSignalHandlers(): void {
  const onSignal = async () => {
    if (interrupted) return;
    interrupted = true;
    console.error("\nbench: interrupted; stopping servers and unmounting");
    await cleanUpEverything();
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

// ---------------------------------------------------------------------------
// Ports

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Whether some socket is listening on `port` (from /proc/net/tcp*, without connecting). */
async function isListening(port: number): Promise<boolean> {
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    const text = await Deno.readTextFile(table).catch(() => "");
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 4 || fields[3] !== "0A") continue;
      if (parseInt(fields[1].split(":")[1], 16) === port) return true;
    }
  }
  return false;
}

/** Waits until `proc` listens on `port`; throws if it exits or takes too long. */
async function waitListening(proc: Proc, port: number, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await isListening(port))) {
    if (proc.exited) throw new Error(`${what} exited at start: ${proc.output.trim()}`);
    if (Date.now() > deadline) throw new Error(`${what} did not listen on ${port} within 30 s`);
    await sleep(10);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------
// Peers: which tools can run here, installing what is missing.

const SEARCH_DIRS = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

function findExecutable(name: string): string | null {
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

function isRoot(): boolean {
  return Deno.uid() === 0;
}

/** The Debian package a tool needs, and whether it is usable already. */
async function missingPackage(tool: Tool): Promise<string | null> {
  switch (tool) {
    case "ferry":
    case "ferry-plain":
    case "ferry-xxh128":
      return null;
    case "nc": {
      const help = await capture("nc", ["-h"]);
      return help.text.includes("OpenBSD netcat") ? null : "netcat-openbsd";
    }
    case "rsync":
    case "rsync-fsync":
      return findExecutable("rsync") ? null : "rsync";
    case "scp":
      return findExecutable("sshd") && findExecutable("scp") && findExecutable("ssh-keygen")
        ? null
        : "openssh-server";
  }
}

/** Installs `packages` with apt-get; returns why it could not, or null. */
async function aptInstall(packages: string[]): Promise<string | null> {
  console.error(`bench: installing ${packages.join(" ")} with apt-get`);
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  const update = await capture("apt-get", ["update", "-qq"], env);
  if (!update.ok) return `apt-get update failed: ${lastLine(update.text)}`;
  const install = await capture(
    "apt-get",
    ["install", "-y", "-qq", "--no-install-recommends", ...packages],
    env,
  );
  return install.ok ? null : `apt-get install failed: ${lastLine(install.text)}`;
}

function lastLine(text: string): string {
  return text.trim().split("\n").at(-1) ?? "";
}

/** Why `tool` cannot run even though its package is there (e.g. rsync without --fsync). */
async function featureMissing(tool: Tool): Promise<string | null> {
  if (tool !== "rsync-fsync") return null;
  const help = await capture("rsync", ["--help"]);
  return help.text.includes("--fsync")
    ? null
    : `this rsync has no --fsync (${lastLine((await capture("rsync", ["--version"])).text)})`;
}

/** Splits the wanted tools into those that can run and those skipped, with the reason. */
async function resolvePeers(
  tools: Tool[],
  install: boolean,
): Promise<{ usable: Tool[]; skipped: Skip[] }> {
  const missing = new Map<Tool, string>();
  for (const tool of tools) {
    const pkg = await missingPackage(tool);
    if (pkg !== null) missing.set(tool, pkg);
  }
  let installError: string | null = null;
  const packages = [...new Set(missing.values())];
  if (packages.length > 0 && !install) installError = "not installed (--no-install)";
  else if (packages.length > 0 && !isRoot()) installError = "not installed, and not root";
  else if (packages.length > 0) installError = await aptInstall(packages);
  const usable: Tool[] = [];
  const skipped: Skip[] = [];
  for (const tool of tools) {
    const pkg = missing.get(tool);
    const stillMissing = pkg !== undefined && (await missingPackage(tool)) !== null;
    const reason = stillMissing
      ? `needs ${pkg}: ${installError ?? "still missing after install"}`
      : await featureMissing(tool);
    if (reason === null) usable.push(tool);
    else skipped.push({ tool, reason });
  }
  return { usable, skipped };
}

// ---------------------------------------------------------------------------
// Workloads: the data, described first and written afterwards.

interface FileSpec {
  /** Relative to the source folder; the first component is the workload's entry. */
  path: string;
  size: number;
}

interface Workload {
  name: WorkloadName;
  /** What is sent: a file or folder directly inside the source folder. */
  entry: string;
  files: FileSpec[];
  bytes: number;
  description: string;
  /** Many files: runs stay until the phase ends (deleting thousands right away is slow on this disk). */
  keepRuns: boolean;
}

function makeWorkload(name: WorkloadName, quick: boolean): Workload {
  switch (name) {
    case "big":
      return describe(name, "big.bin", bigFile(quick ? 8 * MiB : GiB));
    case "small":
      return describe(name, "small", smallFiles(quick ? 200 : 10_000, quick ? 10 : 100));
    case "mixed":
      return describe(name, "mixed", mixedTree(quick ? 30 : 300, quick ? MiB : 20 * MiB));
    case "huge":
      return describe(name, "huge.bin", [{ path: "huge.bin", size: quick ? 16 * MiB : 4 * GiB }]);
    case "many":
      return describe(name, "many", manyFiles(quick ? 500 : 100_000, quick ? 5 : 1000));
  }
}

function describe(name: WorkloadName, entry: string, files: FileSpec[]): Workload {
  const bytes = files.reduce((sum, f) => sum + f.size, 0);
  const sizes = files.length === 1
    ? humanBytes(bytes)
    : `${files.length} files, ${humanBytes(bytes)} in all`;
  return { name, entry, files, bytes, description: sizes, keepRuns: files.length >= 1000 };
}

function bigFile(size: number): FileSpec[] {
  return [{ path: "big.bin", size }];
}

function smallFiles(count: number, folders: number): FileSpec[] {
  const perFolder = Math.ceil(count / folders);
  return Array.from({ length: count }, (_, i) => ({
    path: `small/d${pad(Math.floor(i / perFolder), 3)}/f${pad(i % perFolder, 4)}.bin`,
    size: 4 * KiB,
  }));
}

/** `count` files of 1 KiB in `folders` folders under many/. */
function manyFiles(count: number, folders: number): FileSpec[] {
  const perFolder = Math.ceil(count / folders);
  return Array.from({ length: count }, (_, i) => ({
    path: `many/d${pad(Math.floor(i / perFolder), 4)}/f${pad(i % perFolder, 4)}.bin`,
    size: KiB,
  }));
}

/** `count` files from 1 KiB to `largest`, log-uniform, each 0 to 3 folders below mixed/. */
function mixedTree(count: number, largest: number): FileSpec[] {
  const random = mulberry32(20240607);
  const span = Math.log(largest / KiB);
  return Array.from({ length: count }, (_, i) => {
    const depth = Math.floor(random() * 4);
    const folders = Array.from({ length: depth }, (_, d) => `l${d}-${Math.floor(random() * 4)}`);
    const size = Math.round(KiB * Math.exp(random() * span));
    return { path: ["mixed", ...folders, `file-${pad(i, 4)}.dat`].join("/"), size };
  });
}

/** A small seeded generator: the mixed tree has the same shape every time. */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, "0");
}

function humanBytes(bytes: number): string {
  if (bytes >= GiB) return `${(bytes / GiB).toFixed(bytes % GiB === 0 ? 0 : 2)} GiB`;
  if (bytes >= MiB) return `${(bytes / MiB).toFixed(bytes % MiB === 0 ? 0 : 1)} MiB`;
  return `${(bytes / KiB).toFixed(0)} KiB`;
}

/** Writes the workload's files with random (incompressible) bytes under `srcDir`. */
async function writeWorkload(workload: Workload, srcDir: string): Promise<void> {
  const made = new Set<string>();
  const buffer = new Uint8Array(MiB);
  for (const file of workload.files) {
    const path = join(srcDir, file.path);
    const dir = path.slice(0, path.lastIndexOf("/"));
    if (!made.has(dir)) {
      await Deno.mkdir(dir, { recursive: true });
      made.add(dir);
    }
    await writeRandomFile(path, file.size, buffer);
  }
}

async function writeRandomFile(path: string, size: number, buffer: Uint8Array): Promise<void> {
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
  for (let done = 0; done < size;) {
    const chunk = buffer.subarray(0, Math.min(buffer.length, size - done));
    fillRandom(chunk);
    for (let written = 0; written < chunk.length;) {
      written += await file.write(chunk.subarray(written));
    }
    done += chunk.length;
  }
}

function fillRandom(bytes: Uint8Array): void {
  for (let at = 0; at < bytes.length; at += 65536) {
    crypto.getRandomValues(bytes.subarray(at, Math.min(bytes.length, at + 65536)));
  }
}

// ---------------------------------------------------------------------------
// Checking a run: file count, total size, and the first bytes of the largest file.

interface TreeStats {
  files: number;
  bytes: number;
}

async function treeStats(path: string): Promise<TreeStats> {
  const info = await Deno.lstat(path);
  if (info.isFile) return { files: 1, bytes: info.size };
  const stats: TreeStats = { files: 0, bytes: 0 };
  if (!info.isDirectory) return stats;
  for await (const entry of Deno.readDir(path)) {
    const sub = await treeStats(join(path, entry.name));
    stats.files += sub.files;
    stats.bytes += sub.bytes;
  }
  return stats;
}

/** Why the copy of `workload` in `destDir` is wrong, or null if it looks right. */
async function verifyCopy(
  workload: Workload,
  srcDir: string,
  destDir: string,
): Promise<string | null> {
  let got: TreeStats;
  try {
    got = await treeStats(join(destDir, workload.entry));
  } catch (err) {
    return `destination missing: ${errorText(err)}`;
  }
  if (got.files !== workload.files.length || got.bytes !== workload.bytes) {
    return `destination has ${got.files} files, ${got.bytes} bytes; expected ${workload.files.length}, ${workload.bytes}`;
  }
  const largest = workload.files.reduce((a, b) => (b.size > a.size ? b : a));
  const same = await sameHead(join(srcDir, largest.path), join(destDir, largest.path), 64 * KiB);
  return same ? null : `${largest.path}: first bytes differ from the source`;
}

async function sameHead(a: string, b: string, length: number): Promise<boolean> {
  const [x, y] = await Promise.all([readHead(a, length), readHead(b, length)]);
  return x.length === y.length && x.every((byte, i) => byte === y[i]);
}

async function readHead(path: string, length: number): Promise<Uint8Array> {
  using file = await Deno.open(path);
  const buffer = new Uint8Array(length);
  let filled = 0;
  while (filled < length) {
    const n = await file.read(buffer.subarray(filled));
    if (n === null) break;
    filled += n;
  }
  return buffer.subarray(0, filled);
}

// ---------------------------------------------------------------------------
// Placements: a fresh tmpfs, or a folder on disk.

interface PlacementDir {
  placement: Placement;
  root: string;
  /** The tmpfs mount point, to unmount at the end. */
  mount: string | null;
}

async function preparePlacement(
  placement: Placement,
  options: Options,
  tmpfsBytes: number,
): Promise<PlacementDir> {
  const parent = placement === "disk" ? options.diskParent : tempParent();
  const root = await makeOwnDir(parent, `ferry-bench-${placement}-`);
  if (placement === "disk") return { placement, root, mount: null };
  const mounted = await capture("mount", [
    "-t",
    "tmpfs",
    "-o",
    `size=${Math.ceil(tmpfsBytes / MiB)}m`,
    "tmpfs",
    root,
  ]);
  if (!mounted.ok) {
    await removeMadeDir(root);
    throw new Error(`mount -t tmpfs failed: ${lastLine(mounted.text)}`);
  }
  liveMounts.add(root);
  return { placement, root, mount: root };
}

async function releasePlacement(dir: PlacementDir): Promise<void> {
  if (dir.mount !== null) await unmountTmpfs(dir.mount);
  await removeMadeDir(dir.root);
}

/** Unmounts; if busy, tries again, then detaches it lazily (umount -l). */
async function unmountTmpfs(dir: string): Promise<void> {
  let result = await capture("umount", [dir]);
  if (!result.ok) {
    await sleep(500);
    result = await capture("umount", [dir]);
  }
  if (!result.ok) {
    console.error(`bench: umount ${dir} failed (${lastLine(result.text)}); detaching it lazily`);
    result = await capture("umount", ["-l", dir]);
  }
  if (result.ok) liveMounts.delete(dir);
}

/** The tmpfs size for the selected workloads: sources plus every destination kept at once. */
function tmpfsSize(workloads: Workload[], runs: number, tools: number): number {
  const need = workloads.map((w) => {
    const onTmpfs = w.files.reduce((sum, f) => sum + Math.ceil(f.size / 4096) * 4096, 0);
    const copies = w.keepRuns ? 1 + runs * tools : 2;
    return onTmpfs * copies;
  });
  return Math.max(...need) + 256 * MiB;
}

// ---------------------------------------------------------------------------
// Servers, started once per placement.

interface Servers {
  ferry?: { proc: Proc; port: number; inbox: string };
  ferryPlain?: { proc: Proc; port: number; inbox: string };
  rsync?: { proc: Proc; port: number; module: string };
  sshd?: { proc: Proc; port: number; user: string; key: string };
}

/** Where each run's destination folders go: the rsync module's path. */
function destRoot(dir: PlacementDir): string {
  return join(dir.root, "dest");
}

async function startServers(tools: Tool[], dir: PlacementDir, confDir: string): Promise<Servers> {
  const servers: Servers = {};
  if (tools.includes("ferry") || tools.includes("ferry-xxh128")) {
    servers.ferry = await startFerryServe(join(dir.root, "inbox"));
  }
  if (tools.includes("ferry-plain")) {
    servers.ferryPlain = await startFerryServe(join(dir.root, "inbox-plain"), [
      "--open",
      "--plaintext",
    ]);
  }
  if (tools.includes("rsync") || tools.includes("rsync-fsync")) {
    servers.rsync = await startRsyncDaemon(destRoot(dir), confDir);
  }
  if (tools.includes("scp")) servers.sshd = await startSshd(confDir);
  return servers;
}

async function stopServers(servers: Servers): Promise<void> {
  await Promise.all([
    servers.ferry?.proc.stop(),
    servers.ferryPlain?.proc.stop(),
    servers.rsync?.proc.stop(),
    servers.sshd?.proc.stop(),
  ]);
}

/** How the bench runs ferry from source: with the V8 flags its tasks and binaries use. */
export function denoArgs(...args: string[]): string[] {
  return ["run", "--quiet", V8_FLAGS, "--allow-all", MAIN, ...args];
}

/**
 * The code `ferry serve` asks senders for. It goes to both sides through FERRY_CODE rather than
 * --code, so ferry keeps its default settings and a ferry without codes simply ignores it.
 */
const FERRY_ENV = { FERRY_CODE: `bench-${crypto.randomUUID().slice(0, 8)}` };

async function startFerryServe(
  inbox: string,
  extra: string[] = [],
): Promise<NonNullable<Servers["ferry"]>> {
  await Deno.mkdir(inbox, { recursive: true });
  const port = freePort();
  const proc = new Proc(
    Deno.execPath(),
    denoArgs("serve", inbox, "--port", String(port), "--host", "127.0.0.1", "--quiet", ...extra),
    extra.includes("--open") ? {} : { env: FERRY_ENV },
  );
  await waitListening(proc, port, "ferry serve");
  return { proc, port, inbox };
}

async function startRsyncDaemon(
  module: string,
  confDir: string,
): Promise<NonNullable<Servers["rsync"]>> {
  await Deno.mkdir(module, { recursive: true });
  const conf = join(confDir, `rsyncd-${Date.now()}.conf`);
  const identity = isRoot() ? ["uid = root", "gid = root"] : [];
  await Deno.writeTextFile(
    conf,
    [
      "use chroot = no",
      "read only = no",
      ...identity,
      `log file = ${join(confDir, "rsyncd.log")}`,
      "[bench]",
      `path = ${module}`,
      "",
    ].join("\n"),
  );
  const port = freePort();
  const proc = new Proc("rsync", [
    "--daemon",
    "--no-detach",
    "--address",
    "127.0.0.1",
    "--port",
    String(port),
    "--config",
    conf,
  ]);
  await waitListening(proc, port, "rsync --daemon");
  return { proc, port, module };
}

async function startSshd(confDir: string): Promise<NonNullable<Servers["sshd"]>> {
  const hostKey = join(confDir, "ssh_host_ed25519_key");
  const clientKey = join(confDir, "client_ed25519");
  await makeKey(hostKey);
  await makeKey(clientKey);
  if (isRoot()) await Deno.mkdir("/run/sshd", { recursive: true }); // privilege separation
  const port = freePort();
  const conf = join(confDir, `sshd-${port}.conf`);
  await Deno.writeTextFile(conf, sshdConfig(port, hostKey, `${clientKey}.pub`));
  const sshd = findExecutable("sshd") ?? "/usr/sbin/sshd"; // sshd re-execs: absolute path
  const proc = new Proc(sshd, ["-D", "-e", "-p", String(port), "-f", conf, "-h", hostKey]);
  await waitListening(proc, port, "sshd");
  return { proc, port, user: await currentUser(), key: clientKey };
}

async function makeKey(path: string): Promise<void> {
  await Deno.remove(path).catch(() => {});
  await Deno.remove(`${path}.pub`).catch(() => {});
  const made = await capture("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path]);
  if (!made.ok) throw new Error(`ssh-keygen failed: ${lastLine(made.text)}`);
}

function sshdConfig(port: number, hostKey: string, authorizedKeys: string): string {
  return [
    `Port ${port}`,
    "ListenAddress 127.0.0.1",
    `HostKey ${hostKey}`,
    `AuthorizedKeysFile ${authorizedKeys}`,
    "StrictModes no",
    "PubkeyAuthentication yes",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "PermitRootLogin prohibit-password",
    "UsePAM no",
    "PidFile none",
    "Subsystem sftp internal-sftp",
    "LogLevel ERROR",
    "",
  ].join("\n");
}

async function currentUser(): Promise<string> {
  const who = await capture("id", ["-un"]);
  return who.text.trim() || "root";
}

// ---------------------------------------------------------------------------
// One timed run of one tool.

interface RunContext {
  workload: Workload;
  srcDir: string;
  /** A fresh folder for this run; the copy lands in destDir/<entry>. */
  destDir: string;
  servers: Servers;
  timeoutMs: number;
}

interface Outcome {
  seconds: number;
  /** Why the run failed, or null. */
  error: string | null;
  /** ferry only: the sender's peak RSS. */
  senderRssKiB: number | null;
  /** CPU time the whole machine spent during the run (null where /proc/stat cannot be read). */
  cpuSeconds: number | null;
}

const RUNNERS: Record<Tool, (ctx: RunContext) => Promise<Outcome>> = {
  ferry: (ctx) => runFerry(ctx, false),
  "ferry-plain": (ctx) => runFerry(ctx, true),
  "ferry-xxh128": (ctx) => runFerry(ctx, false, ["--digest", "xxh128"]),
  nc: runNc,
  rsync: (ctx) => runRsync(ctx, false),
  "rsync-fsync": (ctx) => runRsync(ctx, true),
  scp: runScp,
};

interface Timed {
  seconds: number;
  error: string | null;
  cpuSeconds: number | null;
}

/**
 * Starts `procs()` and times them until all exit; a non-zero exit or a
 * timeout is an error. Also takes the machine's busy CPU time over the same
 * span, so that it counts the servers' share (ferry serve, the rsync daemon,
 * nc -l) as well as the sending command's.
 */
async function timeProcesses(start: () => Proc[], timeoutMs: number): Promise<Timed> {
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
  const output = procs[failed].output.trim().split("\n").slice(-3).join(" / ");
  return { seconds, error: `exit code ${statuses[failed].code}: ${output}`, cpuSeconds };
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
  const [user, nice, system, , , irq, softirq] = fields.slice(1, 8).map(Number);
  const busy = user + nice + system + irq + softirq;
  return Number.isFinite(busy) ? busy / CLOCK_TICKS_PER_SECOND : null;
}

const TIME = findExecutable("time") !== null ? "/usr/bin/time" : null;

async function runFerry(ctx: RunContext, plain: boolean, extra: string[] = []): Promise<Outcome> {
  const server = plain ? ctx.servers.ferryPlain! : ctx.servers.ferry!;
  const rssFile = await Deno.makeTempFile({ prefix: "ferry-bench-rss-" });
  const send = denoArgs(
    "send",
    join(ctx.srcDir, ctx.workload.entry),
    "--to",
    `127.0.0.1:${server.port}`,
    "--quiet",
    ...(plain ? ["--plaintext"] : []),
    ...extra,
  );
  let sender: Proc | null = null;
  let peak: Promise<number | null> = Promise.resolve(null);
  const timed = await timeProcesses(() => {
    sender = TIME
      ? new Proc(TIME, ["-f", "%M", "-o", rssFile, Deno.execPath(), ...send], { env: FERRY_ENV })
      : new Proc(Deno.execPath(), send, { env: FERRY_ENV });
    if (!TIME) peak = pollPeakRss(sender);
    return [sender];
  }, ctx.timeoutMs);
  const senderRssKiB = TIME ? await readRssFile(rssFile) : await peak;
  await Deno.remove(rssFile).catch(() => {});
  const error = timed.error ?? checkFerrySummary(sender!, ctx.workload) ??
    await moveOutOfInbox(server.inbox, ctx);
  return { seconds: timed.seconds, error, senderRssKiB, cpuSeconds: timed.cpuSeconds };
}

/** ferry's summary line, when it is there, must count every file. */
function checkFerrySummary(sender: Proc, workload: Workload): string | null {
  const match = /ferry: sent (\d+) files?/.exec(sender.output);
  if (match === null) return null;
  const sent = Number(match[1]);
  return sent === workload.files.length
    ? null
    : `ferry reported ${sent} files sent, expected ${workload.files.length}`;
}

/** The serve folder is shared by all runs: move this run's copy into its own destination. */
async function moveOutOfInbox(inbox: string, ctx: RunContext): Promise<string | null> {
  try {
    await Deno.rename(join(inbox, ctx.workload.entry), join(ctx.destDir, ctx.workload.entry));
    return null;
  } catch (err) {
    return `received copy not found in the serve folder: ${errorText(err)}`;
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

async function readVmHwm(pid: number): Promise<number | null> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`).catch(() => "");
  const match = /^VmHWM:\s+(\d+) kB/m.exec(status);
  return match ? Number(match[1]) : null;
}

/** Resets a process's VmHWM (Linux: write 5 to clear_refs); false if not allowed. */
async function resetVmHwm(pid: number): Promise<boolean> {
  try {
    await Deno.writeTextFile(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

async function runNc(ctx: RunContext): Promise<Outcome> {
  const port = freePort();
  const { entry, files } = ctx.workload;
  const single = files.length === 1 && files[0].path === entry;
  const receive = single
    ? `nc -l 127.0.0.1 ${port} > ${shellQuote(join(ctx.destDir, entry))}`
    : `nc -l 127.0.0.1 ${port} | tar -x -f - -C ${shellQuote(ctx.destDir)}`;
  const sendCmd = single
    ? `nc -N 127.0.0.1 ${port} < ${shellQuote(join(ctx.srcDir, entry))}`
    : `tar -c -f - -C ${shellQuote(ctx.srcDir)} ${shellQuote(entry)} | nc -N 127.0.0.1 ${port}`;
  const receiver = new Proc("bash", ["-o", "pipefail", "-c", receive], { group: true });
  try {
    await waitListening(receiver, port, "nc -l");
  } catch (err) {
    await receiver.stop();
    return { seconds: 0, error: errorText(err), senderRssKiB: null, cpuSeconds: null };
  }
  const timed = await timeProcesses(
    () => [receiver, new Proc("bash", ["-o", "pipefail", "-c", sendCmd], { group: true })],
    ctx.timeoutMs,
  );
  return { ...timed, senderRssKiB: null };
}

async function runRsync(ctx: RunContext, fsync: boolean): Promise<Outcome> {
  const server = ctx.servers.rsync!;
  const target = `rsync://127.0.0.1:${server.port}/bench/${relative(server.module, ctx.destDir)}/`;
  const args = ["-a", ...(fsync ? ["--fsync"] : []), join(ctx.srcDir, ctx.workload.entry), target];
  const timed = await timeProcesses(() => [new Proc("rsync", args)], ctx.timeoutMs);
  return { ...timed, senderRssKiB: null };
}

async function runScp(ctx: RunContext): Promise<Outcome> {
  const server = ctx.servers.sshd!;
  const args = [
    "-q",
    "-r",
    "-P",
    String(server.port),
    "-i",
    server.key,
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "BatchMode=yes",
    "-o",
    "LogLevel=ERROR",
    join(ctx.srcDir, ctx.workload.entry),
    `${server.user}@127.0.0.1:${ctx.destDir}/`,
  ];
  const timed = await timeProcesses(() => [new Proc("scp", args)], ctx.timeoutMs);
  return { ...timed, senderRssKiB: null };
}

// ---------------------------------------------------------------------------
// The measurement loop.

interface Attempt {
  tool: Tool;
  workload: WorkloadName;
  placement: Placement;
  run: number;
  seconds: number;
  ok: boolean;
  error: string | null;
  senderRssKiB: number | null;
  cpuSeconds: number | null;
}

interface Skip {
  tool?: Tool;
  placement?: Placement;
  reason: string;
}

interface ReceiverPeak {
  workload: WorkloadName;
  placement: Placement;
  rssKiB: number | null;
  /** false: clear_refs was refused, so the peak is since serve started. */
  reset: boolean;
}

interface Measurements {
  attempts: Attempt[];
  receiverPeaks: ReceiverPeak[];
  skipped: Skip[];
}

/** Run i starts with tool i (mod n), so no tool always runs right after the same one. */
function rotate<T>(items: T[], by: number): T[] {
  const k = by % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

async function measurePlacement(
  dir: PlacementDir,
  workloads: Workload[],
  tools: Tool[],
  options: Options,
  confDir: string,
  into: Measurements,
): Promise<void> {
  const servers = await startServers(tools, dir, confDir);
  try {
    for (const workload of workloads) {
      await measureWorkload(dir, workload, tools, servers, options, into);
    }
  } finally {
    await stopServers(servers);
  }
}

async function measureWorkload(
  dir: PlacementDir,
  workload: Workload,
  tools: Tool[],
  servers: Servers,
  options: Options,
  into: Measurements,
): Promise<void> {
  const srcDir = join(dir.root, "src");
  log(`[${dir.placement}] ${workload.name}: writing ${workload.description}`);
  await writeWorkload(workload, srcDir);
  await sync();
  const reset = servers.ferry ? await resetVmHwm(servers.ferry.proc.pid) : false;
  try {
    for (let run = 1; run <= runsOf(workload, options); run++) {
      for (const tool of rotate(tools, run - 1)) {
        if (interrupted) throw new Interrupted();
        const attempt = await measureOnce(dir, workload, tool, run, servers, srcDir, options);
        into.attempts.push(attempt);
      }
    }
    if (servers.ferry) {
      const rssKiB = await readVmHwm(servers.ferry.proc.pid);
      into.receiverPeaks.push({ workload: workload.name, placement: dir.placement, rssKiB, reset });
    }
  } finally {
    log(`[${dir.placement}] ${workload.name}: deleting the phase's data`);
    await emptyDir(srcDir);
    await emptyDir(destRoot(dir));
    if (servers.ferry) await removeInboxLeftovers(servers.ferry.inbox);
  }
}

async function measureOnce(
  dir: PlacementDir,
  workload: Workload,
  tool: Tool,
  run: number,
  servers: Servers,
  srcDir: string,
  options: Options,
): Promise<Attempt> {
  const destDir = join(destRoot(dir), `${workload.name}-${tool}-${run}`);
  await Deno.mkdir(destDir, { recursive: true });
  const ctx: RunContext = {
    workload,
    srcDir,
    destDir,
    servers,
    timeoutMs: options.quick ? 120_000 : 900_000,
  };
  const outcome = await RUNNERS[tool](ctx);
  const error = outcome.error ?? await verifyCopy(workload, srcDir, destDir);
  const status = error === null ? "ok" : `FAILED: ${error}`;
  log(
    `[${dir.placement}] ${workload.name} run ${run}/${runsOf(workload, options)} ${tool}: ${
      outcome.seconds.toFixed(3)
    } s ${status}`,
  );
  if (!workload.keepRuns) await Deno.remove(destDir, { recursive: true }).catch(() => {});
  await sync(); // the next run does not pay for this run's write-back
  return {
    tool,
    workload: workload.name,
    placement: dir.placement,
    run,
    seconds: outcome.seconds,
    ok: error === null,
    error,
    senderRssKiB: outcome.senderRssKiB,
    cpuSeconds: outcome.cpuSeconds,
  };
}

function runsOf(workload: Workload, options: Options): number {
  return workload.name === "big" || workload.name === "huge" ? options.bigRuns : options.runs;
}

async function sync(): Promise<void> {
  await capture("sync", []);
}

async function emptyDir(path: string): Promise<void> {
  await Deno.mkdir(path, { recursive: true });
  for await (const entry of Deno.readDir(path)) {
    await Deno.remove(join(path, entry.name), { recursive: true });
  }
}

/** What a failed ferry run may have left in the serve folder (not its .ferry state). */
async function removeInboxLeftovers(inbox: string): Promise<void> {
  for await (const entry of Deno.readDir(inbox)) {
    if (entry.name !== ".ferry") await Deno.remove(join(inbox, entry.name), { recursive: true });
  }
}

function log(line: string): void {
  console.error(`bench: ${line}`);
}

// ---------------------------------------------------------------------------
// Start-up time

async function measureStartup(): Promise<number[]> {
  await capture(Deno.execPath(), denoArgs("--version")); // warm the module cache
  const samples: number[] = [];
  for (let i = 0; i < STARTUP_SAMPLES; i++) {
    const began = performance.now();
    const result = await capture(Deno.execPath(), denoArgs("--version"));
    if (!result.ok) throw new Error(`ferry --version failed: ${result.text.trim()}`);
    samples.push((performance.now() - began) / 1000);
  }
  return samples;
}

// ---------------------------------------------------------------------------
// Summaries, the table and the JSON

interface CaseSummary {
  tool: Tool;
  workload: WorkloadName;
  placement: Placement;
  runs: number;
  ok: number;
  medianSeconds: number | null;
  mbPerSecond: number | null;
  /** Median CPU seconds the machine spent busy during the successful runs (all processes). */
  medianCpuSeconds: number | null;
  /** ferry's median time / this tool's median time: above 1, the tool is faster. */
  speedVsFerry: number | null;
  senderPeakRssMB: number | null;
  receiverPeakRssMB: number | null;
  seconds: number[];
  errors: string[];
}

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function summarize(
  measurements: Measurements,
  workloads: Workload[],
  placements: Placement[],
  tools: Tool[],
): CaseSummary[] {
  const summaries: CaseSummary[] = [];
  for (const placement of placements) {
    for (const workload of workloads) {
      const cases = tools.map((tool) => summarizeCase(measurements, workload, placement, tool));
      if (cases.every((c) => c.runs === 0)) continue;
      const ferry = cases.find((c) => c.tool === "ferry")?.medianSeconds ?? null;
      for (const c of cases) {
        c.speedVsFerry = ferry !== null && c.medianSeconds ? ferry / c.medianSeconds : null;
      }
      summaries.push(...cases.filter((c) => c.runs > 0));
    }
  }
  return summaries;
}

function summarizeCase(
  measurements: Measurements,
  workload: Workload,
  placement: Placement,
  tool: Tool,
): CaseSummary {
  const attempts = measurements.attempts.filter((a) =>
    a.tool === tool && a.workload === workload.name && a.placement === placement
  );
  const good = attempts.filter((a) => a.ok);
  const seconds = good.map((a) => a.seconds);
  const medianSeconds = median(seconds);
  const cpu = good.map((a) => a.cpuSeconds).filter((c): c is number => c !== null);
  const senderRss = good.map((a) => a.senderRssKiB).filter((k): k is number => k !== null);
  const receiver = measurements.receiverPeaks.find((p) =>
    p.workload === workload.name && p.placement === placement
  );
  const isFerry = tool === "ferry";
  return {
    tool,
    workload: workload.name,
    placement,
    runs: attempts.length,
    ok: good.length,
    medianSeconds,
    mbPerSecond: medianSeconds ? workload.bytes / 1e6 / medianSeconds : null,
    medianCpuSeconds: median(cpu),
    speedVsFerry: null,
    senderPeakRssMB: isFerry && senderRss.length > 0 ? Math.max(...senderRss) / 1024 : null,
    receiverPeakRssMB: isFerry && receiver?.rssKiB ? receiver.rssKiB / 1024 : null,
    seconds,
    errors: attempts.flatMap((a) => (a.error === null ? [] : [`run ${a.run}: ${a.error}`])),
  };
}

function fixed(value: number | null, digits: number): string {
  return value === null ? "—" : value.toFixed(digits);
}

function markdownTable(
  summaries: CaseSummary[],
  workloads: Workload[],
  startup: number[],
  skipped: Skip[],
): string {
  const lines = [
    ...workloads.map((w) => `- ${w.name}: ${w.description}`),
    "- median s: median wall time of the successful runs (start of the sending command until" +
    " every process of the run has exited)",
    "- MB/s: workload bytes / median s, in 10^6 bytes per second",
    "- vs ferry: ferry's median time / the tool's median time (above 1: the tool is faster)",
    "- CPU s: median CPU time the whole machine spent busy during a run (user + system, every" +
    " process: the sender, the receiver and its server), from /proc/stat",
    "- RSS: peak resident memory of ferry's sender (highest of the runs) and receiver" +
    " (`ferry serve`, over the workload's runs), in MiB",
    "",
    "| tool | workload | placement | runs ok | median s | MB/s | vs ferry | CPU s | ferry sender RSS MiB | ferry receiver RSS MiB |",
    "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...summaries.map((s) =>
      `| ${s.tool} | ${s.workload} | ${s.placement} | ${s.ok}/${s.runs} | ${
        fixed(s.medianSeconds, 3)
      } | ${fixed(s.mbPerSecond, 1)} | ${fixed(s.speedVsFerry, 2)} | ${
        fixed(s.medianCpuSeconds, 2)
      } | ${fixed(s.senderPeakRssMB, 0)} | ${fixed(s.receiverPeakRssMB, 0)} |`
    ),
    "",
    `\`ferry --version\` start-up (deno run, median of ${startup.length}): ${
      fixed(median(startup), 3)
    } s`,
  ];
  for (const skip of skipped) {
    lines.push(`skipped ${skip.tool ?? skip.placement}: ${skip.reason}`);
  }
  for (const s of summaries) {
    for (const error of s.errors) {
      lines.push(`FAILED ${s.tool} ${s.workload} ${s.placement} ${error}`);
    }
  }
  return lines.join("\n");
}

interface MachineInfo {
  cpus: number;
  cpuModel: string;
  memoryMiB: number;
  kernel: string;
  os: string;
  deno: typeof Deno.version;
  tools: Record<string, string>;
  /** `git describe --always --dirty` of the ferry tree measured, or "unknown" outside git. */
  ferryRevision: string;
  /** /proc/loadavg when the bench started and when it ended: other work skews the numbers. */
  loadAverage: { start: string; end: string };
}

async function loadAverage(): Promise<string> {
  return (await Deno.readTextFile("/proc/loadavg").catch(() => "")).trim();
}

async function machineInfo(loadAtStart: string): Promise<MachineInfo> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  return {
    cpus: navigator.hardwareConcurrency,
    cpuModel: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? "unknown",
    memoryMiB: Math.round(Deno.systemMemoryInfo().total / MiB),
    kernel: Deno.osRelease(),
    os: lastLine((await capture("sh", ["-c", "grep PRETTY_NAME /etc/os-release"])).text),
    deno: Deno.version,
    tools: await toolVersions(),
    ferryRevision: await ferryRevision(),
    loadAverage: { start: loadAtStart, end: await loadAverage() },
  };
}

async function ferryRevision(): Promise<string> {
  const repo = new URL("..", import.meta.url).pathname;
  const described = await capture("git", ["-C", repo, "describe", "--always", "--dirty"]);
  return described.ok ? described.text.trim() : "unknown";
}

async function toolVersions(): Promise<Record<string, string>> {
  const first = async (cmd: string, args: string[]) =>
    (await capture(cmd, args)).text.trim().split("\n")[0] ?? "";
  const pkg = async (name: string) => await first("dpkg-query", ["-W", "-f", "${Version}", name]);
  return {
    ferry: await first(Deno.execPath(), denoArgs("--version")),
    rsync: await first("rsync", ["--version"]),
    ssh: await first("ssh", ["-V"]),
    "netcat-openbsd": await pkg("netcat-openbsd"),
    "openssh-server": await pkg("openssh-server"),
    tar: await first("tar", ["--version"]),
  };
}

interface Report {
  date: string;
  argv: string[];
  options: Omit<Options, "outDir" | "diskParent">;
  machine: MachineInfo;
  startupSeconds: { median: number | null; samples: number[] };
  workloads: { name: WorkloadName; files: number; bytes: number; description: string }[];
  ratio: string;
  results: CaseSummary[];
  receiverPeaks: ReceiverPeak[];
  attempts: Attempt[];
  skipped: Skip[];
}

async function writeJson(report: Report, outDir: string): Promise<string> {
  await Deno.mkdir(outDir, { recursive: true });
  const path = join(outDir, `${report.date.replace(/[:.]/g, "-")}.json`);
  await Deno.writeTextFile(path, JSON.stringify(report, null, 2) + "\n");
  return path;
}

// ---------------------------------------------------------------------------
// main

async function measureAll(
  options: Options,
  workloads: Workload[],
  tools: Tool[],
  into: Measurements,
): Promise<Placement[]> {
  const confDir = await makeOwnDir(tempParent(), "ferry-bench-conf-");
  const measured: Placement[] = [];
  try {
    for (const placement of options.placements) {
      const dir = await placementOrSkip(placement, options, workloads, tools.length, into);
      if (dir === null) continue;
      measured.push(placement);
      try {
        await measurePlacement(dir, workloads, tools, options, confDir, into);
      } finally {
        await releasePlacement(dir);
      }
    }
  } finally {
    await removeMadeDir(confDir);
  }
  return measured;
}

async function placementOrSkip(
  placement: Placement,
  options: Options,
  workloads: Workload[],
  tools: number,
  into: Measurements,
): Promise<PlacementDir | null> {
  if (placement === "tmpfs" && !isRoot()) {
    into.skipped.push({ placement, reason: "mounting a tmpfs needs root" });
    return null;
  }
  try {
    return await preparePlacement(placement, options, tmpfsSize(workloads, options.runs, tools));
  } catch (err) {
    into.skipped.push({ placement, reason: errorText(err) });
    return null;
  }
}

async function main(args: string[]): Promise<number> {
  const options = parseOptions(args);
  const loadAtStart = await loadAverage();
  installSignalHandlers();
  const workloads = options.workloads.map((name) => makeWorkload(name, options.quick));
  const measurements: Measurements = { attempts: [], receiverPeaks: [], skipped: [] };
  const peers = await resolvePeers(options.tools, options.install);
  measurements.skipped.push(...peers.skipped);
  for (const skip of peers.skipped) log(`skipping ${skip.tool}: ${skip.reason}`);
  if (peers.usable.length === 0) throw new Error("no tool can run");
  log(`measuring start-up (ferry --version, ${STARTUP_SAMPLES} runs)`);
  const startup = await measureStartup();
  const date = new Date().toISOString();
  const placements = await measureAll(options, workloads, peers.usable, measurements);
  const results = summarize(measurements, workloads, placements, peers.usable);
  console.log(markdownTable(results, workloads, startup, measurements.skipped));
  const { outDir: _out, diskParent: _disk, ...shown } = options;
  const path = await writeJson({
    date,
    argv: args,
    options: shown,
    machine: await machineInfo(loadAtStart),
    startupSeconds: { median: median(startup), samples: startup },
    workloads: workloads.map((w) => ({
      name: w.name,
      files: w.files.length,
      bytes: w.bytes,
      description: w.description,
    })),
    ratio: "speedVsFerry = ferry median seconds / tool median seconds (above 1: tool is faster)",
    results,
    receiverPeaks: measurements.receiverPeaks,
    attempts: measurements.attempts,
    skipped: measurements.skipped,
  }, options.outDir);
  console.log(`\nload average at start / end: ${loadAtStart} / ${await loadAverage()}`);
  console.log(`JSON: ${path}`);
  return measurements.attempts.every((a) => a.ok) ? 0 : 1;
}

if (import.meta.main) {
  let code = 1;
  try {
    code = await main(Deno.args);
  } catch (err) {
    if (err instanceof UsageError) {
      if (err.message) console.error(`bench: ${err.message}\n${USAGE}`);
      else console.log(USAGE);
      code = err.message ? 2 : 0;
    } else if (err instanceof Interrupted) {
      code = 130;
    } else {
      console.error(`bench: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
    }
  } finally {
    await cleanUpEverything();
  }
  Deno.exit(code);
}
