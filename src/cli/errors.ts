/**
 * Errors people meet, with their exit codes. main.ts prints these as one
 * line; anything else is a bug and keeps its stack trace.
 */

export const ExitCode = { ok: 0, failure: 1, usage: 2 } as const;

/** An expected failure at run time: one line, exit 1. */
export class FerryError extends Error {
  readonly exitCode: number = ExitCode.failure;
  constructor(message: string) {
    super(message);
    this.name = "FerryError";
  }
}

/** Wrong arguments: one line and a hint, exit 2. */
export class UsageError extends FerryError {
  override readonly exitCode: number = ExitCode.usage;
  constructor(message: string, readonly hint: string) {
    super(message);
    this.name = "UsageError";
  }
}
