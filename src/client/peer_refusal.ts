/**
 * What a receiver's ERROR means, in the sender's own words. An ERROR sent
 * before the key exchange is a plain frame anyone on the path can forge, so
 * of it only the code is shown (decodeError lets only a token through, never
 * the peer's text); ERRORs
 * inside records come from the receiver that proved the code and keep their
 * message, escaped where it is printed.
 */
import { escapeName } from "../escape.ts";

/** The codes a receiver sends in the clear (PROTOCOL.md §10.3), explained locally. */
const CLEAR_CODES: Readonly<Record<string, string>> = {
  "busy": "it is busy (too many senders at once)",
  "shutting-down": "it is shutting down",
  "locked-out":
    "too many wrong codes came from this address; it refuses it until its lockout ends (10 minutes by default)",
  "unsupported-version": "it speaks another ferry protocol version",
  "unsupported-channel":
    "it does not accept this channel (a plain channel needs 'serve --plaintext')",
  "bad-key-share": "it rejected the key exchange",
  "bad-frame": "it could not read our handshake",
  "unexpected-frame": "it did not expect our handshake",
  "internal": "it failed for a reason of its own (see its log)",
};

/** "HOST refused the session: <our explanation> (<code>)", for an ERROR in the clear. */
export function clearRefusal(where: string, code: string): string {
  return `${where} refused the session: ${
    CLEAR_CODES[code] ?? "it gave no reason we know"
  } (${code})`;
}

/** The same for an ERROR from the authenticated receiver: its own message, escaped. */
export function authenticatedRefusal(where: string, code: string, message: string): string {
  return `${where} refused the session: ${escapeName(message)} (${code})`;
}
