/**
 * Errors people meet, with their exit codes. main.ts prints these as one
 * line (and a hint, when there is one); anything else is a bug and keeps its
 * stack trace. Each error has a stable code for `--json` (see error_codes.ts).
 */
import type { ErrorCode } from "./error_codes.ts";

export const ExitCode = { ok: 0, failure: 1, usage: 2 } as const;

export interface FerryErrorOptions {
  /** The stable code `--json` reports; when absent it is worked out from the error. */
  code?: ErrorCode;
  /** A second line telling what to do about it. */
  hint?: string;
  cause?: unknown;
}

/** An expected failure at run time: one line, exit 1. */
export class FerryError extends Error {
  readonly exitCode: number = ExitCode.failure;
  readonly code: ErrorCode | undefined;
  readonly hint: string | undefined;
  constructor(message: string, options: FerryErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "FerryError";
    this.code = options.code;
    this.hint = options.hint;
  }
}

/** Wrong arguments: one line and a hint, exit 2. */
export class UsageError extends FerryError {
  override readonly exitCode: number = ExitCode.usage;
  override readonly hint: string;
  constructor(message: string, hint: string) {
    super(message, { code: "usage", hint });
    this.name = "UsageError";
    this.hint = hint;
  }
}

/** A server on the LAN could not be chosen: none answered, or several did and nobody chose. */
export class DiscoveryError extends FerryError {
  constructor(
    message: string,
    code: "no-server" | "several-servers",
    hint: string,
    /** The servers that answered, as `--to` targets with their names. */
    readonly servers: { name: string; to: string; addresses: string[] }[] = [],
  ) {
    super(message, { code, hint });
    this.name = "DiscoveryError";
  }
}
