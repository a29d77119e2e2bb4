/**
 * The values of options, as the subcommands check them: ports, `HOST[:PORT]`
 * targets, counts, durations, seconds and sizes. The options themselves are
 * parsed by flags.ts (`parseFlags`, re-exported here for the subcommands).
 */
import { UsageError } from "../errors.ts";
import { type Address, DEFAULT_PORT } from "../transport/tcp.ts";

export { parseFlags } from "./flags.ts";

/** Parses a TCP or UDP port; `hint` shows how to give it (by default `FLAG 4455`). */
export function parsePort(value: string, flag = "--port", hint = `e.g. ${flag} 4455`): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port < 1 || port > 65535) {
    throw new UsageError(`${flag} must be a port number from 1 to 65535, not '${value}'`, hint);
  }
  return port;
}

/**
 * Parses `HOST`, `HOST:PORT`, `[IPv6]`, `[IPv6]:PORT` or a bare IPv6 address.
 * The hints show the port inside --to: `send` has no --port.
 */
export function parseTarget(value: string): Address {
  const hint = "e.g. --to 192.168.1.20 or --to 192.168.1.20:4455";
  const portHint = "e.g. --to 192.168.1.20:4455, that is --to HOST:PORT";
  const port = (text: string) => parsePort(text, "the port in --to", portHint);
  if (value === "") throw new UsageError("--to needs a host", hint);
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(value);
  if (bracketed) {
    return {
      host: bracketed[1]!,
      port: bracketed[2] === undefined ? DEFAULT_PORT : port(bracketed[2]),
    };
  }
  const colons = value.split(":").length - 1;
  if (colons === 0) return { host: value, port: DEFAULT_PORT };
  if (colons > 1) return { host: value, port: DEFAULT_PORT }; // a bare IPv6 address
  const [host = "", after = ""] = value.split(":");
  if (host === "") throw new UsageError(`--to needs a host before ':${after}'`, hint);
  return { host, port: port(after) };
}

/** Parses a whole number from `min` up, for count flags. */
export function parseCount(value: string, flag: string, min = 1): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min) {
    throw new UsageError(
      `${flag} must be a whole number from ${min}, not '${value}'`,
      `e.g. ${flag} 10`,
    );
  }
  return n;
}

/** Parses a duration like `90s`, `30m`, `24h`, `7d` or plain seconds, into milliseconds. */
export function parseDuration(value: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(value.trim());
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match?.[2] ?? "s"]!;
  const ms = match ? Number(match[1]) * unit : NaN;
  if (!Number.isFinite(ms) || ms <= 0) {
    throw new UsageError(
      `${flag} must be a duration like 90s, 30m or 24h, not '${value}'`,
      `e.g. ${flag} 24h`,
    );
  }
  return ms;
}

/** Parses a positive number of seconds into milliseconds. */
export function parseSeconds(value: string, flag: string): number {
  const seconds = Number(value);
  if (!Number.isFinite(seconds) || seconds <= 0) {
    throw new UsageError(
      `${flag} must be a positive number of seconds, not '${value}'`,
      `e.g. ${flag} 30`,
    );
  }
  return seconds * 1000;
}

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1000 ** 4,
  tib: 1024 ** 4,
};

/** Parses a size like `500M`, `2GiB` or `1000000`, in bytes. */
export function parseSize(value: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(value.trim());
  const unit = match ? SIZE_UNITS[match[2]!.toLowerCase()] : undefined;
  const bytes = match && unit ? Math.floor(Number(match[1]) * unit) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes < 0) {
    throw new UsageError(
      `${flag} must be a size like 500M or 2G, not '${value}'`,
      `e.g. ${flag} 10G`,
    );
  }
  return bytes;
}
