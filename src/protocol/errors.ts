/**
 * A violation of the protocol by the peer. The session that sees one sends an
 * ERROR frame with `code` (when it still can) and closes; other sessions are
 * not affected.
 */
export class ProtocolError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}
