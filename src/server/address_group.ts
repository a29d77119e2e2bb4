/**
 * The unit the receiver counts senders by: an IPv4 address, or an IPv6 /64.
 * One host is usually given a whole /64 and can pick any address in it, so
 * counting IPv6 addresses one by one would give it 2^64 fresh budgets. An
 * IPv4 address that arrives IPv4-mapped (`::ffff:a.b.c.d`, as a dual-stack
 * listener reports it) is the IPv4 address.
 */

/** The group `host` (an address as Deno reports it) belongs to, in one canonical spelling. */
export function addressGroup(host: string): string {
  let text = host.trim().toLowerCase();
  if (text.startsWith("[") && text.endsWith("]")) text = text.slice(1, -1);
  const zone = text.indexOf("%");
  if (zone >= 0) text = text.slice(0, zone);
  if (!text.includes(":")) return parseIpv4(text) === null ? host : text;
  const words = parseIpv6(text);
  // Not an address we can read: the text itself is the group (still one budget per spelling).
  if (words === null) return host;
  if (words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff) {
    return `${words[6] >> 8}.${words[6] & 0xff}.${words[7] >> 8}.${words[7] & 0xff}`;
  }
  return `${words.slice(0, 4).map((w) => w.toString(16)).join(":")}::/64`;
}

/** The four bytes of a dotted quad, or null. */
function parseIpv4(text: string): number[] | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const bytes = parts.map((p) => /^\d{1,3}$/.test(p) ? Number(p) : NaN);
  return bytes.every((b) => b <= 255) ? bytes : null;
}

/** The eight 16-bit words of an IPv6 address (`::` expanded, a dotted tail read), or null. */
function parseIpv6(text: string): number[] | null {
  const halves = text.split("::");
  if (halves.length > 2) return null;
  // A dotted quad may only end the address.
  const words = (part: string, last: boolean): number[] | null => {
    if (part === "") return [];
    const out: number[] = [];
    const pieces = part.split(":");
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i];
      if (last && i === pieces.length - 1 && piece.includes(".")) {
        const bytes = parseIpv4(piece);
        if (bytes === null) return null;
        out.push((bytes[0] << 8) | bytes[1], (bytes[2] << 8) | bytes[3]);
      } else if (/^[0-9a-f]{1,4}$/.test(piece)) {
        out.push(parseInt(piece, 16));
      } else {
        return null;
      }
    }
    return out;
  };
  const head = words(halves[0], halves.length === 1);
  const tail = halves.length === 2 ? words(halves[1], true) : [];
  if (head === null || tail === null) return null;
  if (halves.length === 1) return head.length === 8 ? head : null;
  const missing = 8 - head.length - tail.length;
  // "::" stands for at least one zero word.
  if (missing < 1) return null;
  return [...head, ...new Array<number>(missing).fill(0), ...tail];
}
