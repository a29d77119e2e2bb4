/** `ferry serve [DIR]`: receive files until stopped. */
import {
  parseCount,
  parseDuration,
  parseFlags,
  parsePort,
  parseSeconds,
  parseSize,
} from "../cli/args.ts";
import { join } from "node:path";
import { UsageError } from "../errors.ts";
import { chooseMode, writeText } from "../cli/output.ts";
import { AskPrompt } from "../cli/ask_prompt.ts";
import { canAsk } from "../cli/prompt.ts";
import { ServeReporter } from "../cli/serve_report.ts";
import { answerName, DISCOVERY_PORT } from "../discovery/discovery_protocol.ts";
import { DiscoveryResponder } from "../discovery/responder.ts";
import {
  MAX_BATCH_ENTRIES,
  MAX_FILE_SIZE,
  MAX_FIRST_PLAN_DELAY_MS,
  MAX_FRAME_PAYLOAD,
  MAX_PATH_BYTES,
  MAX_PATH_DEPTH,
} from "../protocol/limits.ts";
import { CONFLICT_POLICIES, type ConflictPolicy } from "../server/inbox.ts";
import { FerryServer } from "../server/server.ts";
import { DEFAULT_LIMITS, type ServerLimits } from "../server/server_limits.ts";
import { ANY_ADDRESS, DEFAULT_PORT } from "../transport/tcp.ts";
import { CODE_ENV, normalizeCode } from "../transport/code.ts";
import { CODE_BITS, generateCode } from "../transport/generated_code.ts";
import {
  estimateGuesses,
  formatGuesses,
  REFUSE_BELOW_GUESSES,
  WARN_BELOW_GUESSES,
} from "../cli/code_strength.ts";
import { SOFTWARE } from "../version.ts";
import { SERVE_HELP } from "./help.ts";
import { sendCommand } from "../cli/launcher.ts";
import type { WebListener } from "../server/web_listener.ts";
import type { webBanner } from "../cli/web_banner.ts";

const FLAGS = {
  port: { type: "string", short: "p" },
  host: { type: "string" },
  "on-conflict": { type: "string" },
  "max-size": { type: "string" },
  "max-total": { type: "string" },
  "max-connections": { type: "string" },
  "max-entries": { type: "string" },
  "max-batch": { type: "string" },
  "max-message": { type: "string" },
  "max-path-bytes": { type: "string" },
  "max-depth": { type: "string" },
  timeout: { type: "string" },
  "handshake-timeout": { type: "string" },
  "keep-partial": { type: "string" },
  code: { type: "string" },
  open: { type: "boolean" },
  ask: { type: "boolean" },
  "ask-timeout": { type: "string" },
  plaintext: { type: "boolean" },
  "no-discovery": { type: "boolean" },
  "discovery-port": { type: "string" },
  web: { type: "boolean" },
  "web-port": { type: "string" },
  quiet: { type: "boolean", short: "q" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

type Values = {
  [K in keyof typeof FLAGS]?: (typeof FLAGS)[K]["type"] extends "boolean" ? boolean : string;
};

/** The limits from the command line; each can only tighten the protocol's bound. */
function limitsFrom(v: Values): ServerLimits {
  const bounded = (flag: keyof Values, max: number, parse: (s: string, f: string) => number) => {
    const raw = v[flag] as string | undefined;
    if (raw === undefined) return undefined;
    const n = parse(raw, `--${flag}`);
    if (n > max) {
      throw new UsageError(`--${flag} can be at most ${max}`, `run 'ferry serve --help'`);
    }
    return n;
  };
  return {
    maxConnections: bounded("max-connections", 100_000, parseCount) ??
      DEFAULT_LIMITS.maxConnections,
    handshakeTimeoutMs: v["handshake-timeout"] === undefined
      ? DEFAULT_LIMITS.handshakeTimeoutMs
      : parseSeconds(v["handshake-timeout"], "--handshake-timeout"),
    idleTimeoutMs: v.timeout === undefined
      ? DEFAULT_LIMITS.idleTimeoutMs
      : parseSeconds(v.timeout, "--timeout"),
    maxMessage: bounded("max-message", MAX_FRAME_PAYLOAD, parseSize) ?? DEFAULT_LIMITS.maxMessage,
    maxBatchEntries: bounded("max-batch", MAX_BATCH_ENTRIES, parseCount) ??
      DEFAULT_LIMITS.maxBatchEntries,
    maxEntries: bounded("max-entries", Number.MAX_SAFE_INTEGER, parseCount) ??
      DEFAULT_LIMITS.maxEntries,
    maxPathBytes: bounded("max-path-bytes", MAX_PATH_BYTES, parseCount) ??
      DEFAULT_LIMITS.maxPathBytes,
    maxDepth: bounded("max-depth", MAX_PATH_DEPTH, parseCount) ?? DEFAULT_LIMITS.maxDepth,
    maxSize: bounded("max-size", MAX_FILE_SIZE, parseSize) ?? DEFAULT_LIMITS.maxSize,
    maxTotal: bounded("max-total", MAX_FILE_SIZE, parseSize) ?? DEFAULT_LIMITS.maxTotal,
    keepPartialMs: v["keep-partial"] === undefined
      ? DEFAULT_LIMITS.keepPartialMs
      : parseDuration(v["keep-partial"], "--keep-partial"),
  };
}

export async function serve(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags("serve", args, FLAGS);
  if (values.help) {
    console.log(SERVE_HELP);
    return 0;
  }
  if (positionals.length > 1) {
    throw new UsageError("serve takes one directory", "run 'ferry serve --help'");
  }
  const policy = values["on-conflict"] ?? "rename";
  if (!CONFLICT_POLICIES.includes(policy as ConflictPolicy)) {
    throw new UsageError(
      `--on-conflict must be one of ${CONFLICT_POLICIES.join(", ")}, not '${policy}'`,
      "e.g. --on-conflict skip",
    );
  }
  if (
    values["max-message"] !== undefined && parseSize(values["max-message"], "--max-message") < 4096
  ) {
    throw new UsageError("--max-message must be at least 4096 bytes", "e.g. --max-message 64K");
  }
  const warnings: string[] = [];
  const served = serverCode(values.code, values.open ?? false, warnings);
  const code = served.code;
  const plaintext = values.plaintext ?? false;
  if (plaintext && code !== null) {
    throw new UsageError(
      "--plaintext needs --open: a plain channel has no code",
      "ferry serve DIR --open --plaintext (benchmarks on a trusted link only)",
    );
  }
  const port = values.port === undefined ? DEFAULT_PORT : parsePort(values.port);
  const host = values.host ?? ANY_ADDRESS;
  const quiet = values.quiet ?? false;
  const discovery = !(values["no-discovery"] ?? false);
  const discoveryPort = values["discovery-port"] === undefined
    ? DISCOVERY_PORT
    : parsePort(values["discovery-port"], "--discovery-port");
  if (!discovery && values["discovery-port"] !== undefined) {
    throw new UsageError(
      "--no-discovery and --discovery-port exclude each other",
      "run 'ferry serve --help'",
    );
  }
  const askTimeoutMs = askTimeout(values);
  if (values.ask && !values.json && !canAsk()) {
    throw new UsageError(
      "--ask needs a terminal to ask on (standard input and standard error)",
      "run it on a terminal, or add --json to get each question as JSON and answer it on " +
        "standard input",
    );
  }
  const web = values.web ?? false;
  if (!web && values["web-port"] !== undefined) {
    throw new UsageError("--web-port needs --web", "ferry serve --web --web-port 8080");
  }
  const webPort = values["web-port"] === undefined
    ? null
    : parsePort(values["web-port"], "--web-port");
  if (web && plaintext) {
    throw new UsageError(
      "--web and --plaintext exclude each other: the page always encrypts",
      "run 'ferry serve --help'",
    );
  }
  const reporter = new ServeReporter(chooseMode({ json: values.json, quiet }), quiet);
  const prompt = values.ask
    ? new AskPrompt({
      mode: values.json ? "json" : "terminal",
      write: writeText,
      pause: () => reporter.pause(),
      resume: () => reporter.resume(),
    })
    : null;
  const webModules = web ? await loadWeb() : null;
  const server = await FerryServer.start({
    dir: positionals[0] ?? "inbox",
    host,
    port,
    onConflict: policy as ConflictPolicy,
    limits: limitsFrom(values),
    code,
    plaintext,
    software: SOFTWARE,
    onEvent: (event) => reporter.event(event),
    ask: prompt === null ? undefined : {
      ask: (question, signal) => prompt.ask(question, signal),
      timeoutMs: askTimeoutMs,
    },
  });
  let webListener: WebListener | null = null;
  if (webModules !== null) {
    try {
      webListener = webModules.WebListener.start({
        host,
        port: webPort ?? webModules.DEFAULT_WEB_PORT,
        server,
        maxConnections: server.opts.limits.maxConnections,
      });
    } catch (err) {
      server.close();
      await server.done;
      throw err;
    }
  }
  let responder: DiscoveryResponder | null = null;
  if (discovery) {
    try {
      responder = await startResponder(host, discoveryPort, server.port, code === null);
    } catch (err) {
      warnings.push(
        `discovery is off: cannot listen on UDP port ${discoveryPort}: ${
          err instanceof Error ? err.message : String(err)
        } (senders need --to)`,
      );
    }
  }
  // Listen for signals before the banner says we are up, so a stop right after it is graceful.
  const stop = () => {
    responder?.close();
    webListener?.close();
    server.close();
  };
  Deno.addSignalListener("SIGINT", stop);
  if (Deno.build.os !== "windows") Deno.addSignalListener("SIGTERM", stop);
  if (reporter.mode === "json") {
    reporter.start({
      dir: server.inbox.root,
      host,
      port: server.port,
      addresses: reachableAddresses(host),
      code: served.from === "environment" ? null : code,
      codeRequired: code !== null,
      discoveryPort: responder?.port ?? null,
      webPort: webListener?.port ?? null,
    });
  } else {
    writeText(
      "stdout",
      `${
        banner(
          server.inbox.root,
          host,
          server.port,
          served,
          responder?.port ?? null,
          webListener && webModules && { port: webListener.port, banner: webModules.webBanner },
        )
      }\n`,
    );
  }
  if (plaintext) {
    warnings.push(
      "--plaintext: senders may also use an unencrypted channel; anyone on the network can read and alter it",
    );
  } else if (code === null) {
    warnings.push(
      "--open: anyone who can reach this port can send files here (traffic is still encrypted)",
    );
  }
  for (const warning of warnings) reporter.warning(warning);
  try {
    await server.done;
    if (server.stalled > 0) {
      reporter.warning(
        `stopping with ${server.stalled} dropped session(s) still waiting on the disk; ` +
          `what they staged may be left in ${join(server.inbox.root, ".ferry")}`,
      );
    }
  } finally {
    reporter.close();
    responder?.close();
    await webListener?.close();
    Deno.removeSignalListener("SIGINT", stop);
    if (Deno.build.os !== "windows") Deno.removeSignalListener("SIGTERM", stop);
  }
  reporter.stopped();
  return 0;
}

/** How long a person has to answer `--ask` (default DEFAULT_ASK_TIMEOUT_MS). */
function askTimeout(v: Values): number {
  if (v["ask-timeout"] === undefined) return DEFAULT_ASK_TIMEOUT_MS;
  if (!v.ask) throw new UsageError("--ask-timeout goes with --ask", "run 'ferry serve --help'");
  const ms = parseSeconds(v["ask-timeout"], "--ask-timeout");
  if (ms > MAX_FIRST_PLAN_DELAY_MS) {
    throw new UsageError(
      `--ask-timeout can be at most ${MAX_FIRST_PLAN_DELAY_MS / 1000} seconds (how long a ` +
        "sender waits for an answer)",
      "e.g. --ask-timeout 120",
    );
  }
  return ms;
}

/**
 * How long `--ask` waits for an answer by default: long enough to read the question, and
 * shorter than an older sender's 60 s of patience (one that does not know a receiver may ask).
 */
export const DEFAULT_ASK_TIMEOUT_MS = 45_000;

/** Whether the server listens on every address of this machine. */
function isWildcard(host: string): boolean {
  return host === "0.0.0.0" || host === "::";
}

/**
 * Answers discovery queries on UDP: on all IPv4 addresses (broadcasts and
 * the multicast group reach it there), or only on loopback for a server
 * that listens only there.
 */
async function startResponder(
  host: string,
  port: number,
  tcpPort: number,
  open: boolean,
): Promise<DiscoveryResponder> {
  const loopback = isLoopback(host);
  const name = answerName(hostName());
  const addresses = reachableAddresses(host);
  return await DiscoveryResponder.start({
    port,
    host: loopback ? (host.includes(":") ? "127.0.0.1" : host) : "0.0.0.0",
    multicastInterfaces: loopback ? [] : multicastInterfaces(),
    answer: () => ({ name, addresses, port: tcpPort, any: isWildcard(host), open }),
  });
}

/** This machine's name, if allowed to ask (never prompts for the permission). */
function hostName(): string {
  try {
    if (Deno.permissions.querySync({ name: "sys", kind: "hostname" }).state !== "granted") {
      return "ferry";
    }
    return Deno.hostname();
  } catch {
    return "ferry";
  }
}

/** The IPv4 interfaces to join the multicast group on; the default one if they cannot be listed. */
function multicastInterfaces(): (string | undefined)[] {
  try {
    const found = Deno.networkInterfaces()
      .filter((i) => i.family === "IPv4" && !isLoopback(i.address))
      .map((i) => i.address);
    return found.length > 0 ? [...new Set(found)] : [undefined];
  } catch {
    return [undefined];
  }
}

/** Where the server can be reached: its non-loopback addresses, or the one it listens on. */
export function reachableAddresses(host: string): string[] {
  if (host !== "0.0.0.0" && host !== "::") return [host];
  let interfaces: Deno.NetworkInterfaceInfo[] = [];
  try {
    interfaces = Deno.networkInterfaces();
  } catch { /* not permitted: fall back below */ }
  const found = interfaces
    .filter((i) => (host === "::" || i.family === "IPv4") && !isLoopback(i.address))
    .filter((i) => !i.address.startsWith("fe80:"))
    .map((i) => i.address);
  return found.length > 0 ? [...new Set(found)] : ["127.0.0.1"];
}

function isLoopback(address: string): boolean {
  return address.startsWith("127.") || address === "::1";
}

/** The code senders need, and where it came from (a code from the environment is never shown). */
interface ServerCode {
  code: string | null;
  from: "generated" | "environment" | "command line" | "open";
}

/**
 * The modules only `--web` uses, loaded only with it: the page's listener (with
 * the page, a large bundle) and the banner's QR code.
 */
async function loadWeb() {
  const [{ DEFAULT_WEB_PORT, WebListener }, { webBanner }] = await Promise.all([
    import("../server/web_listener.ts"),
    import("../cli/web_banner.ts"),
  ]);
  return { DEFAULT_WEB_PORT, WebListener, webBanner };
}

/**
 * --code, else FERRY_CODE, else a new one; null with --open. A code a person
 * chose is refused when it is too easy to guess, with a warning when it is
 * weaker than a generated one should be.
 */
function serverCode(flag: string | undefined, open: boolean, warnings: string[]): ServerCode {
  if (open) {
    if (flag !== undefined) {
      throw new UsageError("--open and --code exclude each other", "run 'ferry serve --help'");
    }
    return { code: null, from: "open" };
  }
  const fromEnv = Deno.env.get(CODE_ENV) || undefined; // an empty FERRY_CODE is no code
  const given = flag ?? fromEnv;
  if (given === undefined) return { code: generateCode(), from: "generated" };
  const from = flag !== undefined ? "command line" : "environment";
  const where = flag !== undefined ? "--code" : CODE_ENV;
  const hint =
    `leave out --code and ${CODE_ENV} for a generated code such as 4821-crane-lotus-oyster`;
  const code = normalizeCode(given);
  if (code === null) throw new UsageError(`${where}: the code must be 1 to 128 characters`, hint);
  const guesses = estimateGuesses(code);
  if (guesses < REFUSE_BELOW_GUESSES) {
    throw new UsageError(
      `${where}: the code is too easy to guess (${formatGuesses(guesses)} guesses would find it)`,
      hint,
    );
  }
  if (guesses < WARN_BELOW_GUESSES) {
    warnings.push(
      `${where}: the code is weak (${formatGuesses(guesses)} guesses would find it; a generated ` +
        `one takes ${
          formatGuesses(2 ** CODE_BITS)
        }); the lockouts slow guessing down, they do not stop it`,
    );
  }
  if (flag !== undefined) {
    warnings.push(
      `--code shows the code to every user of this machine (in the process list); set ${CODE_ENV} ` +
        "instead",
    );
  }
  return { code, from };
}

function banner(
  root: string,
  host: string,
  port: number,
  code: ServerCode,
  discoveryPort: number | null,
  web: { port: number; banner: typeof webBanner } | null,
): string {
  const lines = [
    `ferry: receiving into ${root}`,
    `listening on port ${port}; send from another machine with:`,
  ];
  for (const address of reachableAddresses(host)) {
    const shown = address.includes(":") ? `[${address}]` : address;
    const target = port === DEFAULT_PORT ? shown : `${shown}:${port}`;
    lines.push(`  ${sendCommand()} PATH... --to ${target}`);
  }
  // The code once, and never inside a command: a command line is seen by every local user.
  if (code.from === "open") {
    lines.push("no code: this server is open to anyone who can reach it");
  } else if (code.from === "environment") {
    lines.push(
      `the code: the one in ${CODE_ENV} (not shown); send asks for it, or reads ${CODE_ENV}`,
    );
  } else {
    lines.push(`the code: ${code.code}   (send asks for it, or reads ${CODE_ENV})`);
  }
  if (discoveryPort !== null) {
    lines.push(
      `or, on the same network, without --to: this server answers discovery on UDP port ${discoveryPort}`,
    );
  }
  if (web !== null) {
    // The QR code carries the code only when it is the one shown above (never FERRY_CODE's).
    const shown = code.from === "generated" || code.from === "command line";
    lines.push(
      web.banner(reachableAddresses(host), web.port, shown ? code.code : null, code.code !== null),
    );
  }
  lines.push("press Ctrl+C to stop");
  return lines.join("\n");
}
