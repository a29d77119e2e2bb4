/**
 * Which WebSocket requests to `serve --web` come from the page it served
 * (PROTOCOL.md §14). A browser sends the page's origin in Origin, and the
 * name the page was opened by in Host; both must match. That alone is not
 * enough: a site on the internet can point its own name at this machine's
 * address (DNS rebinding), and its script then sends Host and Origin that
 * match each other. So the name in Host must also be one that reaches this
 * machine without anyone's DNS: an IP address (what the banner and the QR
 * code show), localhost, or this machine's own name (and its mDNS .local).
 * Pure, no I/O.
 */
import { parseIp } from "../transport/ip_address.ts";

/** Host header values (the name, without the port) the page may be opened by, beyond IPs. */
export function localNames(machine: string | null): string[] {
  const names = ["localhost"];
  const name = machine?.trim().toLowerCase().replace(/\.$/, "") ?? "";
  if (/^[a-z0-9-]+(\.[a-z0-9-]+)*$/.test(name)) {
    names.push(name);
    if (!name.includes(".")) names.push(`${name}.local`);
  }
  return names;
}

/** The name in a Host header ("192.168.1.20:4456", "[fe80::1]:4456", "box.local"), lowercased. */
function hostName(host: string): string | null {
  const text = host.trim().toLowerCase();
  if (text.startsWith("[")) {
    const end = text.indexOf("]");
    if (end < 0 || !/^(:\d{1,5})?$/.test(text.slice(end + 1))) return null;
    return text.slice(0, end + 1);
  }
  const m = /^([^:]+)(:\d{1,5})?$/.exec(text);
  return m === null ? null : m[1]!;
}

/** True when Host names this machine without DNS (`names` from localNames) and Origin is the page's. */
export function fromOwnPage(
  host: string | null,
  origin: string | null,
  names: readonly string[],
): boolean {
  if (host === null || origin === null || origin !== `http://${host}`) return false;
  return isOwnHost(host, names);
}

/** True when the Host header names this machine without DNS (`names` from localNames). */
export function isOwnHost(host: string | null, names: readonly string[]): boolean {
  const name = host === null ? null : hostName(host);
  if (name === null) return false;
  if (name.startsWith("[")) return parseIp(name.slice(1, -1).replace(/%.*$/, "")) !== null;
  return parseIp(name) !== null || names.includes(name.replace(/\.$/, ""));
}
