/**
 * The tools measured: ferry and the ones people already use to move files
 * (nc, tar | nc, the rsync daemon, scp, magic-wormhole), all on 127.0.0.1.
 * Their servers start once per placement; each run of a tool is timed here.
 */
import { join, relative } from "node:path";
import { v8FlagsFor } from "../../src/cli/v8_flags.ts";
import type { Tool } from "./options.ts";
import {
  capture,
  errorText,
  findExecutable,
  isRoot,
  lastLine,
  PeakRss,
  Proc,
  shellQuote,
  timeProcesses,
} from "./processes.ts";
import { freePort, waitListening } from "./ports.ts";
import { destRoot, type PlacementDir } from "./placements.ts";
import { isSingleFile, type Workload } from "./workloads.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

// ---------------------------------------------------------------------------
// Classes: what a user compares ferry with.

export type ToolClass = "encrypted" | "plain";

/**
 * Encrypted tools protect what they move (ferry's channel, SSH, magic-wormhole's SPAKE2 and
 * secretbox); plain ones send it as it is. Each list is in the order of the printed table.
 */
export const TOOL_CLASSES: Record<ToolClass, readonly Tool[]> = {
  encrypted: ["ferry", "ferry-sha256", "scp", "magic-wormhole"],
  plain: ["ferry-plain", "rsync", "rsync-fsync", "nc"],
};

export function toolClass(tool: Tool): ToolClass {
  return TOOL_CLASSES.encrypted.includes(tool) ? "encrypted" : "plain";
}

/** The tool's name in the table: nc sends a folder as `tar | nc`. */
export function toolLabel(tool: Tool, workload: Workload): string {
  return tool === "nc" && !isSingleFile(workload) ? "tar | nc" : tool;
}

// ---------------------------------------------------------------------------
// Servers, started once per placement.

export interface Servers {
  ferry?: { proc: Proc; port: number; inbox: string };
  ferryPlain?: { proc: Proc; port: number; inbox: string };
  rsync?: { proc: Proc; port: number; module: string };
  sshd?: { proc: Proc; port: number; user: string; key: string };
  wormhole?: {
    mailbox: Proc;
    relay: Proc;
    /** The clients' --relay-url and --transit-helper, both on 127.0.0.1. */
    relayUrl: string;
    transitHelper: string;
    /** TMPDIR of both ends: the sender's zip of a folder is staged in the placement. */
    tmpDir: string;
  };
}

export async function startServers(
  tools: Tool[],
  dir: PlacementDir,
  confDir: string,
): Promise<Servers> {
  const servers: Servers = {};
  if (tools.includes("ferry") || tools.includes("ferry-sha256")) {
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
  if (tools.includes("magic-wormhole")) {
    servers.wormhole = await startWormholeServers(confDir, join(dir.root, "wormhole-tmp"));
  }
  return servers;
}

export async function stopServers(servers: Servers): Promise<void> {
  await Promise.all([
    servers.ferry?.proc.stop(),
    servers.ferryPlain?.proc.stop(),
    servers.rsync?.proc.stop(),
    servers.sshd?.proc.stop(),
    servers.wormhole?.mailbox.stop(),
    servers.wormhole?.relay.stop(),
  ]);
}

/** How the bench runs ferry from source: with the V8 flags its tasks use for the subcommand. */
export function denoArgs(...args: string[]): string[] {
  return ["run", "--quiet", v8FlagsFor(args[0]), "--allow-all", MAIN, ...args];
}

/**
 * The code `ferry serve` asks senders for. It goes to both sides through FERRY_CODE rather than
 * --code, so ferry keeps its default settings and a ferry without codes simply ignores it.
 */
export const FERRY_ENV = { FERRY_CODE: `bench-${crypto.randomUUID().slice(0, 8)}` };
/** ferry-plain's sender: `send --plaintext` refuses a code, and an empty FERRY_CODE is none. */
const NO_CODE_ENV = { FERRY_CODE: "" };

export async function startFerryServe(
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

export async function startRsyncDaemon(
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

/** Twisted's runner (`twist3` on Debian), which starts the wormhole servers; null if missing. */
export function twistCommand(): string | null {
  return findExecutable("twist3") ?? findExecutable("twist");
}

/**
 * magic-wormhole's mailbox (rendezvous) server and transit relay, each on its own port of
 * 127.0.0.1, so that no wormhole run leaves the machine: the clients are pointed at them and
 * open no listening socket of their own (--no-listen), so every transfer goes through this relay.
 */
async function startWormholeServers(
  confDir: string,
  tmpDir: string,
): Promise<NonNullable<Servers["wormhole"]>> {
  const twist = twistCommand();
  if (twist === null) throw new Error("twist3 (python3-twisted) is missing");
  await Deno.mkdir(tmpDir, { recursive: true });
  const mailboxPort = freePort();
  const mailbox = new Proc(twist, [
    "--log-level=warn",
    "wormhole-mailbox",
    `--port=tcp:${mailboxPort}:interface=127.0.0.1`,
    `--channel-db=${join(confDir, `wormhole-mailbox-${mailboxPort}.sqlite`)}`,
  ]);
  const relayPort = freePort();
  const relay = new Proc(twist, [
    "--log-level=warn",
    "transitrelay",
    `--port=tcp:${relayPort}:interface=127.0.0.1`,
  ]);
  await waitListening(mailbox, mailboxPort, "wormhole-mailbox");
  await waitListening(relay, relayPort, "transitrelay");
  return {
    mailbox,
    relay,
    relayUrl: `ws://127.0.0.1:${mailboxPort}/v1`,
    transitHelper: `tcp:127.0.0.1:${relayPort}`,
    tmpDir,
  };
}

// ---------------------------------------------------------------------------
// One timed run of one tool.

export interface RunContext {
  workload: Workload;
  srcDir: string;
  /** A fresh folder for this run; the copy lands in destDir/<entry>. */
  destDir: string;
  servers: Servers;
  timeoutMs: number;
}

export interface Outcome {
  seconds: number;
  /** Why the run failed, or null. */
  error: string | null;
  /** ferry only: the sender's peak RSS. */
  senderRssKiB: number | null;
  /** CPU time the whole machine spent during the run (null where /proc/stat cannot be read). */
  cpuSeconds: number | null;
}

export const RUNNERS: Record<Tool, (ctx: RunContext) => Promise<Outcome>> = {
  ferry: (ctx) => runFerry(ctx, false),
  "ferry-plain": (ctx) => runFerry(ctx, true),
  "ferry-sha256": (ctx) => runFerry(ctx, false, ["--digest", "sha256"]),
  nc: runNc,
  rsync: (ctx) => runRsync(ctx, false),
  "rsync-fsync": (ctx) => runRsync(ctx, true),
  scp: runScp,
  "magic-wormhole": runWormhole,
};

async function runFerry(ctx: RunContext, plain: boolean, extra: string[] = []): Promise<Outcome> {
  const server = plain ? ctx.servers.ferryPlain! : ctx.servers.ferry!;
  const rss = await PeakRss.prepare();
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
  const timed = await timeProcesses(() => {
    sender = rss.spawn(Deno.execPath(), send, { env: plain ? NO_CODE_ENV : FERRY_ENV });
    return [sender];
  }, ctx.timeoutMs);
  const senderRssKiB = await rss.kib();
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

async function runNc(ctx: RunContext): Promise<Outcome> {
  const port = freePort();
  const { entry } = ctx.workload;
  const single = isSingleFile(ctx.workload);
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

/** A fresh wormhole code per run: "<nameplate>-<words>", the nameplate being digits. */
let wormholeRuns = 0;
const WORMHOLE_WORDS = `ferry-bench-${crypto.randomUUID().slice(0, 8)}`;

/**
 * `wormhole send` and `wormhole receive` started together with the same code, as two people
 * would; the clock runs until both have exited. A folder is zipped by the sender (into TMPDIR)
 * and unpacked by the receiver: that is part of what the tool costs.
 */
async function runWormhole(ctx: RunContext): Promise<Outcome> {
  const server = ctx.servers.wormhole!;
  const code = `${++wormholeRuns}-${WORMHOLE_WORDS}`;
  const common = ["--relay-url", server.relayUrl, "--transit-helper", server.transitHelper];
  const quiet = ["--no-listen", "--hide-progress"];
  const env = { TMPDIR: server.tmpDir };
  const send = [...common, "send", ...quiet, "--code", code, join(ctx.srcDir, ctx.workload.entry)];
  const receive = [
    ...common,
    "receive",
    ...quiet,
    "--accept-file",
    "--output-file",
    join(ctx.destDir, ctx.workload.entry),
    code,
  ];
  const timed = await timeProcesses(
    () => [new Proc("wormhole", send, { env }), new Proc("wormhole", receive, { env })],
    ctx.timeoutMs,
  );
  return { ...timed, senderRssKiB: null };
}
