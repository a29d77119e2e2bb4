/**
 * The errors people meet, at the bottom of the layers: any module may throw
 * them, and this one imports nothing. Each carries, as data, its stable code
 * (what `--json` reports, docs/JSON.md), its exit code and, when there is
 * one, a hint saying what to do; src/cli/ only prints them. Anything else
 * that ends a command is a bug (`internal`) and keeps its stack trace.
 */

export const ExitCode = { ok: 0, failure: 1, usage: 2, interrupted: 130 } as const;

/**
 * The stable codes of errors that end a command, as `--json` reports them
 * (`{"type":"error","code":...}`). docs/JSON.md lists them; a code, once
 * published, keeps its meaning.
 */
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
  /**
   * The receiver lacks a feature this send needs (an older ferry; `send --checksum`, `send
   * --text`): nothing was sent.
   */
  "unsupported": "the receiver does not support what this send needs",
  /** The peer broke the protocol, is not a ferry server, or speaks another version. */
  "protocol": "protocol error",
  /** `send` without --to: no server answered discovery. */
  "no-server": "no ferry server answered on the local network",
  /** `send` without --to: several servers answered and none was chosen. */
  "several-servers": "several ferry servers answered",
  /** The person at the receiver declined the transfer (`serve --ask`), or did not answer in time. */
  "declined": "declined by the receiver",
  /** ferry was started without a permission of its set (deno.json `permissions.ferry`). */
  "permission": "a permission ferry needs was not granted",
  /** Any other expected failure; the message says what happened. */
  "failed": "the command failed",
  /** A bug: please report it. */
  "internal": "internal error",
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The code of an expected failure: any but `internal`, which is kept for bugs. */
export type FailureCode = Exclude<ErrorCode, "internal">;

export function isErrorCode(value: string): value is ErrorCode {
  return Object.hasOwn(ERROR_CODES, value);
}

/** The exit code an error with `code` ends the command with (docs/JSON.md's table). */
export function exitCodeOf(code: FailureCode): number {
  if (code === "usage") return ExitCode.usage;
  if (code === "interrupted") return ExitCode.interrupted;
  return ExitCode.failure;
}

export interface FerryErrorOptions {
  /** A second line telling what to do about it. */
  hint?: string;
  cause?: unknown;
}

/** An expected failure at run time: one line (and a hint), exit 1 (2 for usage, 130 interrupted). */
export class FerryError extends Error {
  readonly exitCode: number;
  readonly hint: string | undefined;
  constructor(
    /** The stable code `--json` reports. */
    readonly code: FailureCode,
    message: string,
    options: FerryErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "FerryError";
    this.exitCode = exitCodeOf(code);
    this.hint = options.hint;
  }
}

/** Wrong arguments: one line and a hint, exit 2. Its code is `usage`. */
export class UsageError extends FerryError {
  override readonly hint: string;
  constructor(message: string, hint: string) {
    super("usage", message, { hint });
    this.name = "UsageError";
    this.hint = hint;
  }
}

/** A server on the LAN could not be chosen: none answered, or several did and nobody chose. */
export class DiscoveryError extends FerryError {
  constructor(
    code: "no-server" | "several-servers",
    message: string,
    hint: string,
    /** The servers that answered, as `--to` targets with their names. */
    readonly servers: { name: string; to: string; addresses: string[] }[] = [],
  ) {
    super(code, message, { hint });
    this.name = "DiscoveryError";
  }
}

/**
 * Connecting failed (refused, no answer, unknown host, no route). `send`
 * reports it at once on its first connection, and retries it on later ones
 * (the receiver may be restarting).
 */
export class ConnectFailed extends FerryError {
  constructor(
    code: "connect-refused" | "timeout" | "unknown-host" | "unreachable" | "failed",
    message: string,
  ) {
    super(code, message);
    this.name = "ConnectFailed";
  }
}

/**
 * A session ended in a way that reconnecting can fix (the connection
 * dropped, the receiver fell silent, is busy or restarting): `send` retries
 * it (`--retries`), and reports it with its code if that does not help.
 */
export class ConnectionLost extends FerryError {
  constructor(code: "connection-lost" | "timeout" | "refused", message: string) {
    super(code, message);
    this.name = "ConnectionLost";
  }
}
