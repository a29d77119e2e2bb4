/** `ferry send PATH... --to HOST[:PORT]`: send files, trees and standard input. */
import { parseCount, parseFlags, parseSeconds, parseTarget } from "../cli/args.ts";
import { UsageError } from "../cli/errors.ts";
import { escapeName } from "../cli/escape.ts";
import { formatBytes, formatSeconds, plural } from "../cli/format.ts";
import { send as runSend, type SendEvent } from "../client/send_session.ts";
import { resolveSources, STDIN_SOURCE } from "../client/walk.ts";
import { formatAddress } from "../transport/tcp.ts";
import { normalizeCode } from "../transport/code.ts";
import { SOFTWARE } from "../version.ts";
import { SEND_HELP } from "./help.ts";

export async function send(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags("send", args, {
    to: { type: "string", short: "t" },
    name: { type: "string", short: "n" },
    timeout: { type: "string" },
    retries: { type: "string" },
    code: { type: "string", short: "c" },
    quiet: { type: "boolean", short: "q" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(SEND_HELP);
    return 0;
  }
  const hint = "e.g. ferry send photos/ --to 192.168.1.20";
  if (positionals.length === 0) throw new UsageError("send needs at least one PATH", hint);
  if (values.to === undefined) throw new UsageError("send needs --to HOST[:PORT]", hint);
  if (positionals.filter((p) => p === STDIN_SOURCE).length > 1) {
    throw new UsageError("standard input ('-') can be sent only once", hint);
  }
  if (values.name !== undefined && !positionals.includes(STDIN_SOURCE)) {
    throw new UsageError("--name names standard input; add '-' to the paths", hint);
  }
  const to = parseTarget(values.to);
  const timeout = values.timeout === undefined ? 60_000 : parseSeconds(values.timeout, "--timeout");
  const retries = values.retries === undefined ? 5 : parseCount(values.retries, "--retries", 0);
  const quiet = values.quiet ?? false;
  const given = values.code ?? Deno.env.get("FERRY_CODE");
  const code = given === undefined ? null : normalizeCode(given);
  if (given !== undefined && code === null) {
    throw new UsageError(
      "the code must be 1 to 128 characters",
      "e.g. --code 4821-crane-lotus-oyster",
    );
  }
  const sources = await resolveSources(positionals, values.name ?? "stdin");
  const result = await runSend({
    to,
    sources,
    connectTimeoutMs: Math.min(timeout, 15_000),
    idleTimeoutMs: timeout,
    retries,
    code,
    software: SOFTWARE,
    onEvent: (event) => report(event, quiet),
  });
  const resumed = result.resumedBytes > 0 ? `, ${formatBytes(result.resumedBytes)} resumed` : "";
  const already = result.already > 0 ? `, ${result.already} already there` : "";
  const failed = result.failed > 0 ? `, ${result.failed} failed` : "";
  const skipped = result.skipped > 0 ? `, ${result.skipped} skipped` : "";
  const line = `ferry: sent ${plural(result.files, "file")} (${
    formatBytes(result.bytes)
  }${resumed}) to ${formatAddress(to)} in ${
    formatSeconds(result.seconds)
  }${already}${skipped}${failed}`;
  if (result.failed > 0) console.error(line);
  else console.log(line);
  return result.failed > 0 ? 1 : 0;
}

function report(event: SendEvent, quiet: boolean): void {
  switch (event.type) {
    case "connected":
      return;
    case "file-done":
      if (quiet) return;
      if (event.name !== event.path) {
        console.log(
          `sent ${escapeName(event.path)} as ${escapeName(event.name)} (${
            formatBytes(event.bytes)
          })`,
        );
      } else {
        console.log(`sent ${escapeName(event.path)} (${formatBytes(event.bytes)})`);
      }
      return;
    case "skipped":
      console.error(`ferry: skipped ${escapeName(event.path)}: ${escapeName(event.reason)}`);
      return;
    case "warning":
      console.error(`ferry: ${escapeName(event.message)}`);
      return;
    case "retry":
      console.error(
        `ferry: ${escapeName(event.reason)}; retrying in ${event.delayMs / 1000} s (attempt ${
          event.attempt + 1
        })`,
      );
      return;
    case "file-failed":
      console.error(`ferry: failed ${escapeName(event.path)}: ${escapeName(event.reason)}`);
  }
}
