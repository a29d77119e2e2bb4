/**
 * The stable codes of errors that end a command, as `--json` reports them
 * (`{"type":"error","code":...}`). docs/JSON.md lists them; a code, once
 * published, keeps its meaning.
 *
 * `errorCode()` maps an error to its code: by the code the error carries,
 * then by its class, and only for errors thrown as a plain FerryError
 * elsewhere (src/transport/, src/client/) by the shape of their message.
 */
import { ConnectionLost } from "../client/send_session.ts";
import { ProtocolError } from "../protocol/errors.ts";

export const ERROR_CODES = {
  /** Wrong arguments (exit 2). */
  "usage": "wrong arguments or options",
  /** A local file or folder could not be read or written (a missing source, DIR not a folder). */
  "io": "a local file or folder could not be read or written",
  /** The port serve wants is taken. */
  "address-in-use": "the port is already in use",
  /** Nothing listens at the address given to --to. */
  "connect-refused": "the connection was refused",
  /** The host name given to --to does not resolve. */
  "unknown-host": "the host name is unknown",
  /** No route to the host given to --to. */
  "unreachable": "the host cannot be reached",
  /** The receiver did not answer in time (connecting, or silent mid-transfer). */
  "timeout": "no answer in time",
  /** The connection dropped, and reconnecting (--retries) did not help. */
  "connection-lost": "the connection was lost",
  /** `send` was stopped (Ctrl+C, SIGINT; exit 130): running it again resumes. */
  "interrupted": "interrupted; running the same command again resumes",
  /** The receiver refused the session or stopped it (busy, a limit, shutting down). */
  "refused": "the receiver refused the session",
  /** The receiver needs a code and none was given (--code or FERRY_CODE). */
  "code-required": "the receiver needs a code",
  /** A code was given and the receiver asks for none (open, or not the receiver meant): nothing sent. */
  "receiver-open": "the receiver asks for no code",
  /** The code given does not match the receiver's. */
  "wrong-code": "the code is wrong",
  /** The peer broke the protocol, is not a ferry server, or speaks another version. */
  "protocol": "protocol error",
  /** `send` without --to: no server answered discovery. */
  "no-server": "no ferry server answered on the local network",
  /** `send` without --to: several servers answered and none was chosen. */
  "several-servers": "several ferry servers answered",
  /** ferry was started without a permission of its set (deno.json `permissions.ferry`). */
  "permission": "a permission ferry needs was not granted",
  /** Any other expected failure; the message says what happened. */
  "failed": "the command failed",
  /** A bug: please report it. */
  "internal": "internal error",
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(value: string): value is ErrorCode {
  return Object.hasOwn(ERROR_CODES, value);
}

/** A FerryError's shape, as errorCode() reads it (errors.ts imports this module's types). */
interface Coded {
  code?: unknown;
  exitCode?: unknown;
  message: string;
  name: string;
}

/**
 * Message shapes of errors that carry no code yet, in the order they are
 * tried. Only the wording of ferry's own messages is matched (src/transport/tcp.ts,
 * src/client/send_session.ts, src/server/inbox.ts), never a peer's text alone.
 */
const BY_MESSAGE: [RegExp, ErrorCode][] = [
  [/^could not connect to .*: connection refused/, "connect-refused"],
  [/^could not connect to .*: unknown host/, "unknown-host"],
  [/^could not connect to .*: no route to/, "unreachable"],
  [/^could not connect to .*: no answer within/, "timeout"],
  [/^port \d+ is already in use/, "address-in-use"],
  [/ stopped responding for /, "timeout"],
  [/^wrong code\b/, "wrong-code"],
  [/ needs its code\b/, "code-required"],
  [/ refused the session: | stopped the transfer: | is shutting down$/, "refused"],
  [/^protocol error\b| is not a ferry server$| speaks ferry protocol version /, "protocol"],
  [/: no such file or directory$|: permission denied$| is not a directory$|^cannot /, "io"],
];

/** The stable code for `err`, an error that ended a command. */
export function errorCode(err: unknown): ErrorCode {
  if (!(err instanceof Error)) return "internal";
  const coded = err as Coded;
  if (err instanceof ProtocolError) return "protocol";
  if (typeof coded.exitCode !== "number") {
    // Not a FerryError: an unexpected failure, unless Deno says what happened.
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.PermissionDenied) {
      return "io";
    }
    if (err instanceof Deno.errors.AddrInUse) return "address-in-use";
    return "internal";
  }
  if (typeof coded.code === "string" && isErrorCode(coded.code)) return coded.code;
  const shaped = BY_MESSAGE.find(([shape]) => shape.test(err.message))?.[1];
  // A lost connection that could not be resumed; its message tells a timeout or a refusal.
  if (err instanceof ConnectionLost) {
    return shaped === "timeout" || shaped === "refused" ? shaped : "connection-lost";
  }
  return shaped ?? (coded.exitCode === 2 ? "usage" : "failed");
}
