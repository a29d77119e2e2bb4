/**
 * The `--json` code of an error that ended a command (docs/JSON.md): the
 * code the error carries (src/errors.ts), decided where it was thrown.
 */
import { type ErrorCode, FerryError } from "../errors.ts";
import { ProtocolError } from "../protocol/errors.ts";

/** The stable code for `err`, an error that ended a command. */
export function errorCode(err: unknown): ErrorCode {
  if (err instanceof FerryError) return err.code;
  if (err instanceof ProtocolError) return "protocol";
  // Not ferry's: an unexpected failure, unless Deno's class says what happened.
  if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.PermissionDenied) {
    return "io";
  }
  if (err instanceof Deno.errors.AddrInUse) return "address-in-use";
  return "internal";
}
