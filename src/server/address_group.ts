/**
 * The unit the receiver counts senders by: an IPv4 address, or an IPv6 /64.
 * One host is usually given a whole /64 and can pick any address in it, so
 * counting IPv6 addresses one by one would give it 2^64 fresh budgets. An
 * IPv4 address that arrives IPv4-mapped (`::ffff:a.b.c.d`, as a dual-stack
 * listener reports it) is the IPv4 address.
 */
import { formatIp, parseIp } from "../transport/ip_address.ts";

/** The group `host` (an address as Deno reports it) belongs to, in one canonical spelling. */
export function addressGroup(host: string): string {
  let text = host.trim().toLowerCase();
  if (text.startsWith("[") && text.endsWith("]")) text = text.slice(1, -1);
  const zone = text.indexOf("%");
  if (zone >= 0) text = text.slice(0, zone);
  const raw = parseIp(text);
  // Not an address we can read: the text itself is the group (still one budget per spelling).
  if (raw === null) return host;
  if (raw.length === 4) return formatIp(raw);
  if (raw.subarray(0, 10).every((b) => b === 0) && raw[10] === 0xff && raw[11] === 0xff) {
    return formatIp(raw.subarray(12));
  }
  const words = [0, 2, 4, 6].map((i) => ((raw[i]! << 8) | raw[i + 1]!).toString(16));
  return `${words.join(":")}::/64`;
}
