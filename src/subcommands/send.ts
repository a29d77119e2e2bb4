/** `ferry send PATH... [--to HOST[:PORT]]`: send files, trees and standard input. */
import { parseCount, parseFlags, parseSeconds, parseTarget } from "../cli/args.ts";
import { DiscoveryError, FerryError, UsageError } from "../cli/errors.ts";
import { escapeName } from "../cli/escape.ts";
import { Excluder } from "../cli/glob.ts";
import { chooseMode, type Mode, writeText } from "../cli/output.ts";
import { canAsk, choose } from "../cli/prompt.ts";
import { SendReporter } from "../cli/send_report.ts";
import { send as runSend } from "../client/send_session.ts";
import { DIGEST_NAMES, isDigestName } from "../protocol/digests.ts";
import { countSources, resolveSources, STDIN_SOURCE } from "../client/walk.ts";
import { DISCOVERY_PORT } from "../discovery/discovery_protocol.ts";
import {
  defaultTargets,
  DISCOVERY_TIMEOUT_MS,
  findServers,
  type FoundServer,
} from "../discovery/finder.ts";
import { type Address, DEFAULT_PORT, formatAddress } from "../transport/tcp.ts";
import { normalizeCode } from "../transport/code.ts";
import { SOFTWARE } from "../version.ts";
import { SEND_HELP } from "./help.ts";

const FLAGS = {
  to: { type: "string", short: "t" },
  name: { type: "string", short: "n" },
  exclude: { type: "string", short: "x", multiple: true },
  timeout: { type: "string" },
  retries: { type: "string" },
  code: { type: "string", short: "c" },
  plaintext: { type: "boolean" },
  digest: { type: "string" },
  quiet: { type: "boolean", short: "q" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

export async function send(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags("send", args, FLAGS);
  if (values.help) {
    console.log(SEND_HELP);
    return 0;
  }
  const hint = "e.g. ferry send photos/ --to 192.168.1.20";
  if (positionals.length === 0) throw new UsageError("send needs at least one PATH", hint);
  const stdinUsed = positionals.includes(STDIN_SOURCE);
  if (positionals.filter((p) => p === STDIN_SOURCE).length > 1) {
    throw new UsageError("standard input ('-') can be sent only once", hint);
  }
  if (values.name !== undefined && !stdinUsed) {
    throw new UsageError("--name names standard input; add '-' to the paths", hint);
  }
  const given = values.to === undefined ? null : parseTarget(values.to);
  const timeout = values.timeout === undefined ? 60_000 : parseSeconds(values.timeout, "--timeout");
  const retries = values.retries === undefined ? 5 : parseCount(values.retries, "--retries", 0);
  const quiet = values.quiet ?? false;
  const codeGiven = values.code ?? Deno.env.get("FERRY_CODE");
  const code = codeGiven === undefined ? null : normalizeCode(codeGiven);
  if (codeGiven !== undefined && code === null) {
    throw new UsageError(
      "the code must be 1 to 128 characters",
      "e.g. --code 4821-crane-lotus-oyster",
    );
  }
  if (values.digest !== undefined && !isDigestName(values.digest)) {
    throw new UsageError(
      `--digest must be one of ${DIGEST_NAMES.join(", ")}, not '${values.digest}'`,
      "e.g. --digest xxh128",
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
    found = await discover(mode, !stdinUsed && mode !== "json" && canAsk());
    to = found.to;
  }

  const reporter = new SendReporter(mode, quiet);
  const where = formatAddress(to);
  reporter.start({
    to: where,
    found: found && { name: found.name, addresses: found.addresses, port: found.port },
    sources: positionals,
  });
  // Totals for the progress display: counted by a second, streaming walk, alongside the transfer.
  const counting = new AbortController();
  if (reporter.wantsTotals) {
    countSources(sources, counting.signal).then(
      (totals) => reporter.totals(totals),
      () => reporter.totals(null),
    );
  }
  const interrupted = () => {
    reporter.close();
    writeText("stderr", "ferry: interrupted\n");
    Deno.exit(130);
  };
  if (mode === "live") Deno.addSignalListener("SIGINT", interrupted);
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
      software: SOFTWARE,
      onEvent: (event) => reporter.event(event),
    });
    reporter.summary(result, where);
    return result.failed > 0 ? 1 : 0;
  } finally {
    counting.abort();
    reporter.close();
    if (mode === "live") Deno.removeSignalListener("SIGINT", interrupted);
  }
}

/** How a found server is shown: its name and the `--to` that reaches it. */
function describe(server: FoundServer): string {
  return `${escapeName(server.name)}  --to ${formatAddress(server.to)}`;
}

/** Finds the one server to send to, asking the person at the terminal if several answer. */
async function discover(mode: Mode, interactive: boolean): Promise<FoundServer> {
  const targets = defaultTargets();
  if (mode === "live") {
    writeText("stdout", "ferry: looking for ferry servers on the local network…");
  }
  let servers: FoundServer[];
  try {
    servers = await findServers({ targets });
  } finally {
    if (mode === "live") writeText("stdout", "\r\x1b[K");
  }
  const example = `ferry send PATH... --to ${servers[0] ? formatAddress(servers[0].to) : "HOST"}`;
  if (servers.length === 0) {
    throw new DiscoveryError(
      `no ferry server answered on the local network within ${DISCOVERY_TIMEOUT_MS / 1000} s`,
      "no-server",
      `give the receiver's address with --to HOST[:PORT], as 'ferry serve' prints it, e.g. ` +
        `ferry send PATH... --to 192.168.1.20; if it is running, its firewall must let in ` +
        `UDP port ${DISCOVERY_PORT} (discovery) and TCP port ${DEFAULT_PORT} (or its --port)`,
    );
  }
  if (servers.length === 1) return servers[0];
  if (interactive) {
    const index = await choose(
      `ferry: ${servers.length} ferry servers answered; send to which one?`,
      servers.map(describe),
    );
    if (index !== null) return servers[index];
    throw new FerryError("no server chosen", { code: "several-servers" });
  }
  throw new DiscoveryError(
    `${servers.length} ferry servers answered; choose one with --to:\n${
      servers.map((s) => `  ${describe(s)}`).join("\n")
    }`,
    "several-servers",
    `e.g. ${example}`,
    servers.map((s) => ({ name: s.name, to: formatAddress(s.to), addresses: s.addresses })),
  );
}
