/**
 * What the web port's gate (web_gate.ts) lets a client send, judged on the
 * raw bytes before the HTTP server sees them. Deno's WebSocket reads a whole
 * message (up to 64 MiB) into memory before ferry can see its size, so the
 * gate follows the client's bytes and cuts the connection at the header of a
 * frame that would take a message over MAX_MESSAGE_BYTES: no more than that
 * is ever buffered for a message.
 *
 * To know where frames start, the gate reads requests as the HTTP server
 * does, and refuses what it could read differently: a request line that is
 * not HTTP/1.x (no HTTP/2), a chunked body, a Content-Length that is not one
 * plain number, a body behind "Expect: 100-continue", headers over
 * MAX_HEADER_BYTES. A line ends at LF, with or
 * without CR before it, and an empty line ends the headers, as in Deno's
 * parser; a body of Content-Length bytes is passed over (the page's server
 * answers such a request 405 and reads nothing from it).
 * After any request that mentions "websocket" the bytes are WebSocket frames
 * (RFC 6455): masked, no extension bits, known opcodes, control frames whole
 * and short. A client that sends an HTTP request where a frame belongs is
 * cut, as is one whose upgrade was refused and that goes on: the page never
 * does either. Pure, no I/O.
 */
import { MAX_MESSAGE_BYTES } from "../transport/websocket_stream.ts";

/** Longest request line and headers, with their line ends (a browser's are about 1 KB). */
export const MAX_HEADER_BYTES = 16 * 1024;
/** Largest request body let through (the server reads none; a browser sends none to it). */
export const MAX_BODY_BYTES = 64 * 1024;

const LF = 0x0a;
const CR = 0x0d;

export class ClientBytes {
  #websocket = false;
  /** HTTP: the current request's header bytes so far. */
  #head: number[] = [];
  /** HTTP: where the current line starts in #head. */
  #lineStart = 0;
  /** HTTP: bytes of the current request's body still to pass. */
  #body = 0;
  /** WebSocket: bytes of the current frame's header so far (at most 14). */
  #frame: number[] = [];
  /** WebSocket: payload bytes (and mask) of the current frame still to pass. */
  #skip = 0;
  /** WebSocket: a data message is open (a frame without FIN came), and its size so far. */
  #inMessage = false;
  #message = 0;
  /** Why the client was cut, once it was. */
  refusal: string | null = null;

  /** Takes the next bytes from the client; false (and `refusal`) if the connection must end. */
  feed(bytes: Uint8Array): boolean {
    if (this.refusal !== null) return false;
    for (let at = 0; at < bytes.length;) {
      if (this.#websocket ? this.#skip > 0 : this.#body > 0) {
        const n = Math.min(this.#websocket ? this.#skip : this.#body, bytes.length - at);
        if (this.#websocket) this.#skip -= n;
        else this.#body -= n;
        at += n;
        continue;
      }
      const byte = bytes[at++]!;
      const why = this.#websocket ? this.#frameByte(byte) : this.#httpByte(byte);
      if (why !== null) {
        this.refusal = why;
        return false;
      }
    }
    return true;
  }

  #httpByte(byte: number): string | null {
    this.#head.push(byte);
    if (this.#head.length > MAX_HEADER_BYTES) return "request headers too long";
    if (byte !== LF) return null;
    const line = this.#head.slice(this.#lineStart, this.#head.length - 1);
    if (line.at(-1) === CR) line.pop();
    this.#lineStart = this.#head.length;
    if (line.length > 0) return null;
    // An empty line: the end of the headers (or, before any, one that Deno skips).
    const text = String.fromCharCode(...this.#head).toLowerCase();
    this.#head = [];
    this.#lineStart = 0;
    if (text.trim() === "") return null;
    const [first, ...fields] = text.trimStart().split(/\r?\n/);
    if (!/^[a-z]+ \S+ http\/1\.[01]$/.test(first!)) return "not an HTTP/1.x request";
    if (text.includes("transfer-encoding")) return "a chunked request body";
    // A body behind "Expect: 100-continue" may never come: its length would mislead.
    if (text.includes("100-continue")) return "a request that waits to send its body";
    const lengths = new Set<string>();
    for (const field of fields) {
      const colon = field.indexOf(":");
      if (colon >= 0 && field.slice(0, colon).trim() === "content-length") {
        lengths.add(field.slice(colon + 1).trim());
      }
    }
    if (lengths.size > 0) {
      const [length] = lengths;
      if (lengths.size > 1 || !/^\d{1,8}$/.test(length!) || Number(length) > MAX_BODY_BYTES) {
        return "a request body out of bounds";
      }
      this.#body = Number(length);
    }
    // Whatever follows a request that mentions WebSocket is frames, upgraded or not.
    if (text.includes("websocket")) this.#websocket = true;
    return null;
  }

  #frameByte(byte: number): string | null {
    this.#frame.push(byte);
    const [b0, b1] = this.#frame;
    if (this.#frame.length === 1) {
      if ((b0! & 0x70) !== 0) return "not a WebSocket frame";
      return [0, 1, 2, 8, 9, 10].includes(b0! & 0x0f) ? null : "not a WebSocket frame";
    }
    if ((b1! & 0x80) === 0) return "an unmasked WebSocket frame";
    const short = b1! & 0x7f;
    const extra = short === 126 ? 2 : short === 127 ? 8 : 0;
    if (this.#frame.length < 2 + extra) return null;
    let length = short;
    if (extra > 0) {
      length = 0;
      for (const b of this.#frame.slice(2)) length = length * 256 + b;
    }
    const fin = (b0! & 0x80) !== 0;
    const opcode = b0! & 0x0f;
    this.#frame = [];
    if (opcode >= 8) {
      if (!fin || length > 125) return "a WebSocket control frame out of bounds";
    } else {
      if ((opcode === 0) !== this.#inMessage) return "WebSocket frames out of order";
      this.#message = (opcode === 0 ? this.#message : 0) + length;
      if (this.#message > MAX_MESSAGE_BYTES) {
        return `a WebSocket message over ${MAX_MESSAGE_BYTES} bytes`;
      }
      this.#inMessage = !fin;
    }
    this.#skip = 4 + length;
    return null;
  }
}
