/**
 * Whether an error means the connection itself is gone, which the sender's
 * and the receiver's sessions both need to tell apart from a fault of
 * either side (the sender reconnects; the receiver reports a disconnection).
 */
import { ProtocolError } from "../protocol/errors.ts";

/** The connection was reset, closed or cut (in the middle of a frame, too): the peer is gone. */
export function isConnectionError(err: unknown): boolean {
  if (err instanceof ProtocolError) return err.code === "truncated";
  // The page of `serve --web` runs this in a browser, which has no Deno errors.
  if (typeof Deno === "undefined") return false;
  return err instanceof Deno.errors.BadResource || err instanceof Deno.errors.ConnectionReset ||
    err instanceof Deno.errors.BrokenPipe || err instanceof Deno.errors.UnexpectedEof ||
    err instanceof Deno.errors.Interrupted || err instanceof Deno.errors.ConnectionAborted;
}
