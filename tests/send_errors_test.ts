/**
 * The sender's words for its failures (src/client/send_errors.ts): each
 * failure's message, code and class (whether send reconnects after it).
 */
import { assert, assertEquals, assertInstanceOf } from "@std/assert";
import { SendErrors } from "../src/client/send_errors.ts";
import { ConnectionLost, FerryError } from "../src/errors.ts";
import { ProtocolError } from "../src/protocol/errors.ts";
import { encodeJson } from "../src/protocol/messages.ts";
import { CodeRequired, PeerRefused, ReceiverOpen, WrongCode } from "../src/transport/channel.ts";

const WHERE = "nas.local:4455";
const first = new SendErrors(WHERE, 60_000, 1);
const later = new SendErrors(WHERE, 60_000, 2);

/** `err` as a FerryError, checked: its class (lost: worth a retry), code and message. */
function check(err: unknown, lost: boolean, code: string, message: string): FerryError {
  assertInstanceOf(err, FerryError);
  assertEquals(err instanceof ConnectionLost, lost, `${message}: ConnectionLost`);
  assertEquals((err as FerryError).code, code);
  assertEquals((err as FerryError).message, message);
  return err as FerryError;
}

Deno.test("send errors: the handshake's failures name the receiver", () => {
  check(
    first.closedInHandshake(),
    true,
    "connection-lost",
    `${WHERE} closed the connection during the handshake`,
  );
  check(first.notFerry(), false, "protocol", `${WHERE} is not a ferry server`);
  check(
    first.otherVersion(9, 1),
    false,
    "protocol",
    `${WHERE} speaks ferry protocol version 9, this ferry speaks 1: use matching ferry versions`,
  );
});

Deno.test("send errors: a failed key exchange in the sender's words, with what to do", () => {
  const required = check(
    first.keyExchange(new CodeRequired()),
    false,
    "code-required",
    `${WHERE} needs its code`,
  );
  assert(required.hint?.includes("FERRY_CODE"));
  const open = check(
    first.keyExchange(new ReceiverOpen()),
    false,
    "receiver-open",
    `${WHERE} asks for no code (it is open to anyone, or it is not the receiver you meant): ` +
      "nothing was sent, because a code was given",
  );
  assert(open.hint?.includes("give no code"));
  // A wrong code on a first connection is just wrong; on a later one the receiver may have restarted.
  const wrong = `wrong code: ${WHERE} did not accept it`;
  assertEquals(
    check(first.keyExchange(new WrongCode("x")), false, "wrong-code", wrong).hint,
    undefined,
  );
  assert(
    check(later.keyExchange(new WrongCode("x")), false, "wrong-code", wrong).hint?.includes(
      "restarted with a new code",
    ),
  );
  const other = new ProtocolError("bad-key-share", "invalid key share");
  assertEquals(first.keyExchange(other), other);
});

Deno.test("send errors: a refusal in the clear shows only its code, explained", () => {
  check(
    first.keyExchange(new PeerRefused("busy", "peer text")),
    true,
    "refused",
    `${WHERE} refused the session: it is busy (too many senders at once) (busy)`,
  );
  check(
    first.keyExchange(new PeerRefused("shutting-down", "peer text")),
    true,
    "refused",
    `${WHERE} refused the session: it is shutting down (shutting-down)`,
  );
  check(
    first.keyExchange(new PeerRefused("locked-out", "peer text")),
    false,
    "refused",
    `${WHERE} refused the session: too many wrong codes came from this address; it refuses it ` +
      "until its lockout ends (10 minutes by default) (locked-out)",
  );
  check(
    first.keyExchange(new PeerRefused("made-up", "peer text")),
    false,
    "refused",
    `${WHERE} refused the session: it gave no reason we know (made-up)`,
  );
});

Deno.test("send errors: the receiver's own ERROR keeps its message, escaped", () => {
  const error = (code: string, message: string) => encodeJson({ code, message });
  check(
    first.refused(error("busy", "two at once")),
    true,
    "refused",
    `${WHERE} refused the session: two at once (busy)`,
  );
  check(
    first.refused(error("no-common-digest", "none\x07")),
    false,
    "refused",
    `${WHERE} refused the session: none\\u{7} (no-common-digest)`,
  );
  check(
    first.stopped(error("shutting-down", "going")),
    true,
    "refused",
    `${WHERE} is shutting down`,
  );
  check(
    first.stopped(error("too-many-entries", "slow down")),
    false,
    "refused",
    `${WHERE} stopped the transfer: slow down (too-many-entries)`,
  );
  check(
    first.closedEarly(),
    true,
    "connection-lost",
    `${WHERE} closed the connection before the transfer ended`,
  );
});

Deno.test("send errors: explain puts silence first, then a dropped connection, then the protocol", () => {
  const reset = new Deno.errors.ConnectionReset("reset");
  const truncated = new ProtocolError("truncated", "connection closed");
  const fault = new ProtocolError("bad-sequence", "ACK for unknown id 4");
  const silent = `${WHERE} stopped responding for 60 s`;
  for (const err of [reset, truncated, fault, new Error("bug")]) {
    check(first.explain(err, true), true, "timeout", silent);
  }
  const lost = `the connection to ${WHERE} was lost`;
  check(first.explain(reset, false), true, "connection-lost", lost);
  check(first.explain(truncated, false), true, "connection-lost", lost);
  check(
    first.explain(fault, false),
    false,
    "protocol",
    `protocol error with ${WHERE}: ACK for unknown id 4`,
  );
  const bug = new Error("bug");
  assertEquals(first.explain(bug, false), bug);
  const already = new FerryError("refused", "said so");
  assertEquals(first.explain(already, false), already);
});

Deno.test("send errors: only a protocol fault of the receiver's is told to it", () => {
  const fault = new ProtocolError("bad-sequence", "ACK for unknown id 4");
  assertEquals(SendErrors.tellsReceiver(fault, false), true);
  assertEquals(SendErrors.tellsReceiver(fault, true), false);
  assertEquals(SendErrors.tellsReceiver(new ProtocolError("truncated", "closed"), false), false);
  assertEquals(SendErrors.tellsReceiver(new Deno.errors.BrokenPipe("pipe"), false), false);
  assertEquals(SendErrors.tellsReceiver(new FerryError("refused", "no"), false), false);
});
