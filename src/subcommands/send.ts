/** `ferry send PATH... [--to HOST[:PORT]]`: send files, trees and standard input. */
import { parseCount, parseFlags, parseSeconds, parseTarget } from "../cli/args.ts";
import { DiscoveryError, FerryError, UsageError } from "../errors.ts";
import { escapeName } from "../escape.ts";
import { Excluder } from "../cli/glob.ts";
import { chooseMode, emitJson, errorObject, type Mode, writeText } from "../cli/output.ts";
import { askSecret, canAsk, choose } from "../cli/prompt.ts";
import { SendReporter } from "../cli/send_report.ts";
import { send as runSend } from "../client/send_session.ts";
import { DIGEST_NAMES, isDigestName } from "../protocol/digests.ts";
import { MAX_TEXT_BYTES } from "../protocol/limits.ts";
import { countSources, resolveSources, STDIN_SOURCE, type Totals } from "../client/walk.ts";
import type { FoundServer } from "../discovery/finder.ts";
import { type Address, DEFAULT_PORT, formatAddress } from "../transport/tcp.ts";
import { CODE_ENV, normalizeCode } from "../transport/code.ts";
import { SOFTWARE } from "../version.ts";
import { SEND_HELP } from "./help.ts";

/** What Ctrl+C on `send` says (it exits 130, 128 + SIGINT, as shells report it). */
const INTERRUPTED = "interrupted; run the same command again to resume";

/** The options `send` takes (exported for the parser's tests). */
export const SEND_FLAGS = {
  to: { type: "string", short: "t" },
  name: { type: "string", short: "n" },
  text: { type: "string" },
  exclude: { type: "string", short: "x", multiple: true },
  timeout: { type: "string" },
  retries: { type: "string" },
  code: { type: "string", short: "c" },
  plaintext: { type: "boolean" },
  digest: { type: "string" },
  checksum: { type: "boolean" },
  quiet: { type: "boolean", short: "q" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

export async function send(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags("send", args, SEND_FLAGS);
  if (values.help) {
    console.log(SEND_HELP);
    return 0;
  }
  const hint = "e.g. ferry send photos/ --to 192.168.1.20";
  const text = textToSend(values.text, positionals, values.name);
  if (positionals.length === 0 && text === undefined) {
    throw new UsageError("send needs at least one PATH", `${hint}, or --text "..." for a text`);
  }
  const stdinUsed = positionals.includes(STDIN_SOURCE);
  const stdinHint = "e.g. tar c dir | ferry send - --name dir.tar --to HOST";
  if (positionals.filter((p) => p === STDIN_SOURCE).length > 1) {
    throw new UsageError("standard input ('-') can be sent only once", stdinHint);
  }
  if (values.name !== undefined && !stdinUsed) {
    throw new UsageError("--name names standard input; add '-' to the paths", stdinHint);
  }
  const given = values.to === undefined ? null : parseTarget(values.to);
  const timeout = values.timeout === undefined ? 60_000 : parseSeconds(values.timeout, "--timeout");
  const retries = values.retries === undefined ? 5 : parseCount(values.retries, "--retries", 0);
  const quiet = values.quiet ?? false;
  // An empty FERRY_CODE is no code.
  const codeGiven = values.code ?? (Deno.env.get(CODE_ENV) || undefined);
  let code = codeGiven === undefined ? null : normalizeCode(codeGiven);
  if (codeGiven !== undefined && code === null) {
    throw new UsageError(
      "the code must be 1 to 128 characters",
      `e.g. ${CODE_ENV}=4821-crane-lotus-oyster ferry send PATH... --to HOST`,
    );
  }
  if (values.plaintext && code !== null) {
    throw new UsageError(
      "--plaintext sends without the code's protection, so it cannot be used with a code",
      `leave out --plaintext (and --code, and unset ${CODE_ENV} only for a receiver started with ` +
        "'serve --open --plaintext')",
    );
  }
  if (values.digest !== undefined && !isDigestName(values.digest)) {
    throw new UsageError(
      `--digest must be one of ${DIGEST_NAMES.join(", ")}, not '${values.digest}'`,
      "e.g. --digest sha256",
    );
  }
  const digests = values.digest === undefined ? undefined : [values.digest];
  const exclude = new Excluder(values.exclude ?? []);
  const mode = chooseMode({ json: values.json, quiet });
  const sources = await resolveSources(
    positionals,
    values.name ?? "stdin",
    exclude.empty ? undefined : exclude,
  );

  let to: Address;
  let found: FoundServer | null = null;
  if (given !== null) {
    to = given;
  } else {
    found = await discover(mode, !stdinUsed && mode !== "json" && canAsk(), code !== null);
    to = found.to;
  }

  const reporter = new SendReporter(mode, quiet);
  const where = formatAddress(to);
  reporter.start({
    to: where,
    found: found && { name: found.name, addresses: found.addresses, port: found.port },
    sources: positionals,
    retries,
  });
  if (values.code !== undefined) {
    reporter.warning(
      `--code shows the code to every user of this machine (in the process list); set ${CODE_ENV} ` +
        "instead, or leave it out to be asked for it",
    );
  }
  // Totals for the progress display (and the receiver's): counted by a second, streaming walk,
  // alongside the transfer.
  const counting = new AbortController();
  let counted: Totals | null = null;
  if (reporter.wantsTotals) {
    countSources(sources, counting.signal).then(
      (totals) => reporter.totals(counted = totals),
      () => reporter.totals(null),
    );
  }
  // Ctrl+C: whatever arrived stays, and unfinished files are kept for resuming; say so.
  const interrupted = () => {
    reporter.close();
    const err = new FerryError("interrupted", INTERRUPTED);
    if (mode === "json") emitJson(errorObject(err));
    else writeText("stderr", `ferry: ${err.message}\n`);
    Deno.exit(err.exitCode);
  };
  Deno.addSignalListener("SIGINT", interrupted);
  // The code is asked for only when the receiver turns out to need one, and only of a person.
  const mayAsk = code === null && !values.plaintext && !stdinUsed && mode !== "json" && canAsk();
  try {
    for (;;) {
      try {
        const result = await runSend({
          to,
          sources,
          connectTimeoutMs: Math.min(timeout, 15_000),
          idleTimeoutMs: timeout,
          retries,
          code,
          plaintext: values.plaintext ?? false,
          digests,
          checksum: values.checksum ?? false,
          totals: () => counted,
          text,
          software: SOFTWARE,
          onEvent: (event) => reporter.event(event),
        });
        reporter.summary(result, where);
        return result.failed > 0 ? 1 : 0;
      } catch (err) {
        if (
          !(mayAsk && code === null && err instanceof FerryError && err.code === "code-required")
        ) {
          throw err;
        }
        code = await askCode(where, reporter);
      }
    }
  } finally {
    counting.abort();
    reporter.close();
    Deno.removeSignalListener("SIGINT", interrupted);
  }
}

/**
 * `--text`: the text's UTF-8 bytes (at most MAX_TEXT_BYTES, not empty), sent instead of files;
 * undefined without it.
 */
function textToSend(
  given: string | undefined,
  paths: string[],
  name: string | undefined,
): Uint8Array | undefined {
  if (given === undefined) return undefined;
  const example = `e.g. ferry send --text "the wifi password is ..." --to HOST`;
  if (paths.length > 0 || name !== undefined) {
    throw new UsageError(
      "--text sends a text instead of files: leave out PATH (and --name), or send them separately",
      example,
    );
  }
  const bytes = new TextEncoder().encode(given);
  if (bytes.length === 0) throw new UsageError("--text needs a text", example);
  if (bytes.length > MAX_TEXT_BYTES) {
    throw new UsageError(
      `--text is ${bytes.length} bytes; a text can be at most ${MAX_TEXT_BYTES} bytes ` +
        `(${MAX_TEXT_BYTES / 1024} KiB) of UTF-8`,
      "send a longer text as a file (ferry send notes.txt, or standard input with '-')",
    );
  }
  return bytes;
}

/** Asks the person at the terminal for the receiver's code (not echoed); gives up on an empty answer. */
async function askCode(where: string, reporter: SendReporter): Promise<string> {
  reporter.pause();
  let answer: string | null;
  try {
    answer = await askSecret(`ferry: ${where} needs its code (shown where 'ferry serve' runs): `);
  } finally {
    reporter.resume();
  }
  const code = answer === null ? null : normalizeCode(answer);
  if (code === null) {
    throw new FerryError("code-required", `${where} needs its code, and none was given`, {
      hint: `type the code 'ferry serve' shows, or set ${CODE_ENV}`,
    });
  }
  return code;
}

/** How a found server is shown: its name and the `--to` that reaches it. */
function describe(server: FoundServer): string {
  return `${escapeName(server.name)}  --to ${formatAddress(server.to)}`;
}

/**
 * Finds the one server to send to, asking the person at the terminal if
 * several answer. A sender with a code never picks a server that says it is
 * open (and the key exchange refuses one that lies about it). Discovery's
 * modules (and node:dgram) are loaded only here: a send with --to does not need them.
 */
async function discover(mode: Mode, interactive: boolean, withCode: boolean): Promise<FoundServer> {
  const { defaultTargets, DISCOVERY_TIMEOUT_MS, findServers } = await import(
    "../discovery/finder.ts"
  );
  const { DISCOVERY_PORT } = await import("../discovery/discovery_protocol.ts");
  const targets = defaultTargets();
  if (mode === "live") {
    writeText("stdout", "ferry: looking for ferry servers on the local network…");
  }
  let servers: FoundServer[];
  let ignoredOpen: number;
  try {
    ({ servers, ignoredOpen } = await findServers({ targets, withCode }));
  } finally {
    if (mode === "live") writeText("stdout", "\r\x1b[K");
  }
  const example = `ferry send PATH... --to ${servers[0] ? formatAddress(servers[0].to) : "HOST"}`;
  if (servers.length === 0) {
    const open = ignoredOpen === 0
      ? ""
      : ` (${ignoredOpen} open one${ignoredOpen === 1 ? "" : "s"} did, left out because a code ` +
        "was given)";
    throw new DiscoveryError(
      "no-server",
      `no ferry server${ignoredOpen === 0 ? "" : " that asks for a code"} answered on the ` +
        `local network within ${DISCOVERY_TIMEOUT_MS / 1000} s${open}`,
      `give the receiver's address with --to HOST[:PORT], as 'ferry serve' prints it, e.g. ` +
        `ferry send PATH... --to 192.168.1.20; if it is running, its firewall must let in ` +
        `UDP port ${DISCOVERY_PORT} (discovery) and TCP port ${DEFAULT_PORT} (or its --port)`,
    );
  }
  const [only] = servers;
  if (servers.length === 1 && only !== undefined) return only;
  if (interactive) {
    const index = await choose(
      `ferry: ${servers.length} ferry servers answered; send to which one?`,
      servers.map(describe),
    );
    const chosen = index === null ? undefined : servers[index];
    if (chosen !== undefined) return chosen;
    throw new FerryError("several-servers", "no server chosen");
  }
  throw new DiscoveryError(
    "several-servers",
    `${servers.length} ferry servers answered; choose one with --to:\n${
      servers.map((s) => `  ${describe(s)}`).join("\n")
    }`,
    `e.g. ${example}`,
    servers.map((s) => ({ name: s.name, to: formatAddress(s.to), addresses: s.addresses })),
  );
}
