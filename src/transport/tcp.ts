/**
 * TCP endpoints: connecting with a deadline and clear errors, and listening.
 */
import { ConnectFailed, FerryError } from "../errors.ts";
import { osCode } from "../os_errors.ts";

export const DEFAULT_PORT = 4455;

export interface Address {
  host: string;
  port: number;
}

/** Formats an address for people: IPv6 literals in brackets. */
export function formatAddress(a: Address): string {
  return a.host.includes(":") ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** Connects to `to` within `timeoutMs`, turning the errors people meet into one clear line. */
export async function connect(to: Address, timeoutMs: number): Promise<Deno.TcpConn> {
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    const conn = await Deno.connect({ hostname: to.host, port: to.port, signal });
    conn.setNoDelay(true);
    return conn;
  } catch (err) {
    throw connectFailure(err, to, timeoutMs, signal.aborted);
  }
}

/**
 * The error `connect()` throws for `err`, Deno's error from connecting to
 * `to` (`aborted`: the `timeoutMs` deadline passed): a ConnectFailed with
 * its code, chosen by Deno's error class or errno name, or `err` itself.
 */
export function connectFailure(
  err: unknown,
  to: Address,
  timeoutMs: number,
  aborted: boolean,
): unknown {
  const where = formatAddress(to);
  if (err instanceof Deno.errors.ConnectionRefused) {
    return new ConnectFailed(
      "connect-refused",
      `could not connect to ${where}: connection refused (is 'ferry serve' running there, and the port open?)`,
    );
  }
  if (aborted || err instanceof Deno.errors.TimedOut) {
    return new ConnectFailed(
      "timeout",
      `could not connect to ${where}: no answer within ${timeoutMs / 1000} s (is 'ferry serve' ` +
        `running there, and TCP port ${to.port} open in its firewall?)`,
    );
  }
  if (err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied) {
    return new ConnectFailed("failed", `could not connect to ${where}: ${(err as Error).message}`);
  }
  if (
    err instanceof Error && osCode(err) === undefined &&
    // error-text: Deno gives a failed name lookup no class and no code, only this message.
    /lookup|resolve|name or service|nodename/i.test(err.message)
  ) {
    return new ConnectFailed(
      "unknown-host",
      `could not connect to ${where}: unknown host '${to.host}'`,
    );
  }
  const code = osCode(err);
  if (
    err instanceof Deno.errors.NetworkUnreachable || code === "ENETUNREACH" ||
    code === "EHOSTUNREACH"
  ) {
    return new ConnectFailed(
      "unreachable",
      `could not connect to ${where}: no route to that host (is the address right?)`,
    );
  }
  return err;
}

/** Listens on `at`, with a clear error when the port is taken or not allowed. */
/** The address that means "every address of this machine, IPv6 and IPv4" (`serve`'s default). */
export const ANY_ADDRESS = "::";

/** Whether `host` is ANY_ADDRESS, which `serve` takes to mean every address, IPv6 and IPv4. */
export function isAnyAddress(host: string): boolean {
  return host === ANY_ADDRESS;
}

/** `::ffff:a.b.c.d` (an IPv4 peer on an IPv6 socket) as `a.b.c.d`; any other address as it is. */
export function unmapIpv4(host: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(host);
  return mapped ? mapped[1]! : host;
}

/**
 * Listens on every address, IPv6 and IPv4, where the system allows it: one
 * IPv6 socket takes both where it is dual-stack (Linux by default); where it
 * takes IPv6 only (Windows, the BSDs, or bindv6only), a second socket on
 * 0.0.0.0 takes IPv4 on the same port; without IPv6, 0.0.0.0 alone.
 */
export function listenAll(port: number): Deno.TcpListener[] {
  let v6: Deno.TcpListener;
  try {
    v6 = Deno.listen({ hostname: ANY_ADDRESS, port, transport: "tcp" });
  } catch (err) {
    if (err instanceof Deno.errors.AddrInUse) return [listen({ host: ANY_ADDRESS, port })];
    return [listen({ host: "0.0.0.0", port })]; // no IPv6 here
  }
  try {
    return [v6, Deno.listen({ hostname: "0.0.0.0", port: v6.addr.port, transport: "tcp" })];
  } catch {
    return [v6]; // dual-stack: the IPv6 socket already takes IPv4
  }
}

export function listen(at: Address): Deno.TcpListener {
  try {
    return Deno.listen({ hostname: at.host, port: at.port, transport: "tcp" });
  } catch (err) {
    if (err instanceof Deno.errors.AddrInUse) {
      throw new FerryError(
        "address-in-use",
        `port ${at.port} is already in use on ${at.host}; choose another with --port`,
      );
    }
    if (
      err instanceof Deno.errors.PermissionDenied || err instanceof Deno.errors.AddrNotAvailable
    ) {
      throw new FerryError(
        "io",
        `cannot listen on ${formatAddress(at)}: ${(err as Error).message}`,
      );
    }
    throw err;
  }
}
