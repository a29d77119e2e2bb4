/**
 * The one place the sender puts its failures into words: what went wrong
 * with the receiver, as a FerryError whose class tells reconnect.ts whether
 * another connection can help (ConnectionLost) or not (FerryError).
 *
 * What a receiver's ERROR means depends on when it came. An ERROR sent
 * before the key exchange is a plain frame anyone on the path can forge, so
 * of it only the code is shown (decodeError lets only a token through, never
 * the peer's text); ERRORs inside records come from the receiver that proved
 * the code and keep their message, escaped where it is printed.
 */
import { ConnectionLost, FerryError } from "../errors.ts";
import { escapeName } from "../escape.ts";
import { ProtocolError } from "../protocol/errors.ts";
import { decodeError } from "../protocol/messages.ts";
import { CodeRequired, PeerRefused, ReceiverOpen, WrongCode } from "../transport/channel.ts";
import { isConnectionError } from "../transport/connection_errors.ts";

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

/** Refusals that pass: the receiver is busy or restarting, so a later connection may get in. */
function passing(code: string): boolean {
  return code === "busy" || code === "shutting-down";
}

/** Words for one session's failures, with the receiver's address (`where`) in them. */
export class SendErrors {
  constructor(
    readonly where: string,
    /**
     * The idle timeout, for the message of a receiver that fell silent (longer while the first
     * PLAN may be held for a person to decide, PROTOCOL.md §6.5).
     */
    public idleTimeoutMs: number,
    /** This session's connection number (1 for the first). */
    readonly attempt: number,
  ) {}

  /** The receiver closed before its preamble. */
  closedInHandshake(): ConnectionLost {
    return new ConnectionLost(
      "connection-lost",
      `${this.where} closed the connection during the handshake`,
    );
  }

  /** The receiver's preamble is not ferry's. */
  notFerry(): FerryError {
    return new FerryError("protocol", `${this.where} is not a ferry server`);
  }

  /** The receiver's preamble names another protocol version. */
  otherVersion(version: number, ours: number): FerryError {
    return new FerryError(
      "protocol",
      `${this.where} speaks ferry protocol version ${version}, this ferry speaks ${ours}: use matching ferry versions`,
    );
  }

  /** What a failed key exchange means to the person sending; other errors pass as they are. */
  keyExchange(err: unknown): unknown {
    if (err instanceof CodeRequired) {
      return new FerryError("code-required", `${this.where} needs its code`, {
        hint: "set FERRY_CODE to the code 'ferry serve' shows there, or run send on a terminal " +
          "to be asked for it",
      });
    }
    if (err instanceof ReceiverOpen) {
      return new FerryError(
        "receiver-open",
        `${this.where} asks for no code (it is open to anyone, or it is not the receiver ` +
          "you meant): nothing was sent, because a code was given",
        {
          hint: "to send to an open receiver ('ferry serve --open'), give no code " +
            "(unset FERRY_CODE, leave out --code)",
        },
      );
    }
    if (err instanceof WrongCode) {
      // Accepted before the connection dropped: the receiver is likely a new one, with a new code.
      const restarted = "the receiver may have restarted with a new code: ask for the code it " +
        "shows now";
      return new FerryError(
        "wrong-code",
        `wrong code: ${this.where} did not accept it`,
        this.attempt > 1 ? { hint: restarted } : {},
      );
    }
    if (err instanceof PeerRefused) {
      // A plain frame: anyone on the path could have sent it, so only its code is shown.
      const message = clearRefusal(this.where, err.code);
      return passing(err.code)
        ? new ConnectionLost("refused", message)
        : new FerryError("refused", message);
    }
    return err;
  }

  /** An ERROR where WELCOME belongs: the receiver refused the session. */
  refused(payload: Uint8Array): FerryError {
    const e = decodeError(payload);
    const message = authenticatedRefusal(this.where, e.code, e.message);
    return passing(e.code)
      ? new ConnectionLost("refused", message)
      : new FerryError("refused", message);
  }

  /** An ERROR during the transfer: the receiver stopped it. */
  stopped(payload: Uint8Array): FerryError {
    const e = decodeError(payload);
    if (e.code === "declined") {
      // Our own words: the receiver's message adds nothing, and it is the peer's text.
      return new FerryError("declined", `declined by the receiver at ${this.where}`);
    }
    return e.code === "shutting-down"
      ? new ConnectionLost("refused", `${this.where} is shutting down`)
      : new FerryError(
        "refused",
        `${this.where} stopped the transfer: ${escapeName(e.message)} (${e.code})`,
      );
  }

  /** The receiver did not name the feature "text": a text cannot be sent (nothing was). */
  noText(): FerryError {
    return new FerryError(
      "unsupported",
      `${this.where} cannot take a text (an older ferry, without the "text" feature); nothing was sent`,
      { hint: "update ferry on the receiver, or send the text as a file" },
    );
  }

  /** The receiver closed cleanly before BYE. */
  closedEarly(): ConnectionLost {
    return new ConnectionLost(
      "connection-lost",
      `${this.where} closed the connection before the transfer ended`,
    );
  }

  /**
   * Any failure of the session as the person sees it: the receiver fell
   * silent (`expired`: the watchdog closed the connection, whatever error
   * that caused), the connection dropped, the receiver broke the protocol;
   * anything else (a FerryError already, or a bug) as it is.
   */
  explain(err: unknown, expired: boolean): unknown {
    if (expired) {
      return new ConnectionLost(
        "timeout",
        `${this.where} stopped responding for ${this.idleTimeoutMs / 1000} s`,
      );
    }
    if (isConnectionError(err)) {
      return new ConnectionLost("connection-lost", `the connection to ${this.where} was lost`);
    }
    if (err instanceof ProtocolError) {
      return new FerryError("protocol", `protocol error with ${this.where}: ${err.message}`);
    }
    return err;
  }

  /** Whether the receiver should hear of `err` (an ERROR frame) before the sender closes. */
  static tellsReceiver(err: unknown, expired: boolean): err is ProtocolError {
    return !expired && err instanceof ProtocolError && !isConnectionError(err);
  }
}
