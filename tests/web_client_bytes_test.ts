/**
 * What the web port's gate lets a client send (src/server/web_client_bytes.ts):
 * the page's requests and its WebSocket frames pass, byte by byte or at once;
 * a WebSocket message over 1 MiB is refused at the frame header that would
 * take it over, before the HTTP server could buffer it; and whatever could
 * make the gate lose track of where frames start is refused.
 */
import { assert, assertEquals } from "@std/assert";
import { ClientBytes, MAX_BODY_BYTES, MAX_HEADER_BYTES } from "../src/server/web_client_bytes.ts";
import { MAX_MESSAGE_BYTES } from "../src/transport/websocket_stream.ts";

const text = (s: string) => new TextEncoder().encode(s);

const PAGE = "GET / HTTP/1.1\r\nHost: 192.168.1.20:4456\r\nAccept: text/html\r\n\r\n";
const UPGRADE = "GET /ferry HTTP/1.1\r\nHost: 192.168.1.20:4456\r\n" +
  "Origin: http://192.168.1.20:4456\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/** A masked client frame's header (RFC 6455 §5.2) for `length` payload bytes. */
function header(opcode: number, length: number, fin = true): Uint8Array {
  const b0 = (fin ? 0x80 : 0) | opcode;
  if (length < 126) return new Uint8Array([b0, 0x80 | length, 1, 2, 3, 4]);
  if (length < 65536) {
    return new Uint8Array([b0, 0x80 | 126, length >> 8, length & 255, 1, 2, 3, 4]);
  }
  const out = new Uint8Array([b0, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
  new DataView(out.buffer).setUint32(6, length);
  return out;
}

function frame(opcode: number, length: number, fin = true): Uint8Array {
  const h = header(opcode, length, fin);
  const out = new Uint8Array(h.length + length);
  out.set(h);
  return out;
}

/** Feeds `parts` whole, then the same bytes one at a time; both must agree. */
function verdict(...parts: (string | Uint8Array)[]): string | null {
  const bytes = parts.map((p) => typeof p === "string" ? text(p) : p);
  const whole = new ClientBytes();
  for (const b of bytes) if (!whole.feed(b)) break;
  const single = new ClientBytes();
  outer: for (const b of bytes) {
    for (const byte of b) if (!single.feed(new Uint8Array([byte]))) break outer;
  }
  assertEquals(single.refusal, whole.refusal);
  return whole.refusal;
}

Deno.test("gate bytes: the page's requests and its WebSocket's messages up to 1 MiB pass", () => {
  assertEquals(verdict(PAGE, PAGE), null);
  assertEquals(verdict("\r\n", PAGE), null);
  // A body is passed over: what it holds is not read as a request (or as frames).
  const body = `GET /ferry HTTP/1.1\r\nUpgrade: websocket\r\n\r\n`;
  assertEquals(
    verdict(`POST / HTTP/1.1\r\ncontent-length: ${body.length}\r\n\r\n${body}`, PAGE),
    null,
  );
  // A request with a body whose bytes would hide a frame header is read as the server reads it.
  assert(
    verdict(
      `POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc`,
      UPGRADE,
      header(2, 32 * 1024 * 1024),
    )?.includes("over"),
  );
  assertEquals(
    verdict(
      PAGE,
      UPGRADE,
      frame(2, MAX_MESSAGE_BYTES),
      frame(1, 7),
      frame(9, 0),
      frame(2, 1000, false),
      frame(10, 4),
      frame(0, MAX_MESSAGE_BYTES - 1000),
      frame(8, 2),
    ),
    null,
  );
});

Deno.test("gate bytes: a message over 1 MiB is refused at its header, whole or in pieces", () => {
  assert(verdict(UPGRADE, header(2, MAX_MESSAGE_BYTES + 1))?.includes("over"));
  assert(verdict(UPGRADE, header(2, 60 * 1024 * 1024))?.includes("over"));
  assert(
    verdict(UPGRADE, frame(2, 600_000, false), frame(0, 400_000, false), header(0, 100_000))
      ?.includes("over"),
  );
  // Lines ended by LF alone end the headers too (Deno's parser takes them).
  const bare = UPGRADE.replaceAll("\r\n", "\n");
  assert(verdict(bare, header(2, 32 * 1024 * 1024))?.includes("over"));
});

Deno.test("gate bytes: what could hide where frames start is refused", () => {
  // A chunked body, an unclear or large length, HTTP/2, headers without end.
  assertEquals(
    verdict("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
    "a chunked request body",
  );
  for (const lengths of [["5", "6"], ["-1"], ["0x10"], ["1e3"], [String(MAX_BODY_BYTES + 1)]]) {
    const fields = lengths.map((n) => `Content-Length: ${n}\r\n`).join("");
    assertEquals(verdict(`POST / HTTP/1.1\r\n${fields}\r\n`), "a request body out of bounds");
  }
  assertEquals(
    verdict("POST / HTTP/1.1\r\nContent-Length: 9\r\nExpect: 100-continue\r\n\r\n"),
    "a request that waits to send its body",
  );
  assertEquals(verdict("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), "not an HTTP/1.x request");
  assertEquals(
    verdict(`GET / HTTP/1.1\r\nX: ${"a".repeat(MAX_HEADER_BYTES)}`),
    "request headers too long",
  );
  // After an upgrade: an HTTP request, an unmasked frame, extension bits, unknown opcodes, a
  // continuation without a start, a new message inside one, a long or fragmented control frame.
  assertEquals(verdict(UPGRADE, PAGE), "not a WebSocket frame");
  assertEquals(verdict(UPGRADE, new Uint8Array([0x82, 0x05])), "an unmasked WebSocket frame");
  assertEquals(verdict(UPGRADE, new Uint8Array([0xc2, 0x85])), "not a WebSocket frame");
  assertEquals(verdict(UPGRADE, new Uint8Array([0x83, 0x85])), "not a WebSocket frame");
  assertEquals(verdict(UPGRADE, header(0, 5)), "WebSocket frames out of order");
  assertEquals(
    verdict(UPGRADE, frame(2, 5, false), header(2, 5)),
    "WebSocket frames out of order",
  );
  assertEquals(verdict(UPGRADE, header(9, 126)), "a WebSocket control frame out of bounds");
  assertEquals(verdict(UPGRADE, header(9, 5, false)), "a WebSocket control frame out of bounds");
  // Once refused, nothing more passes.
  const c = new ClientBytes();
  assertEquals(c.feed(text("PRI * HTTP/2.0\r\n\r\n")), false);
  assertEquals(c.feed(text(PAGE)), false);
});
