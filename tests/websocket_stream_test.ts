/**
 * The WebSocket byte stream (src/transport/websocket_stream.ts, PROTOCOL.md
 * §14) over an in-memory pair of sockets: bytes arrive whole and in order
 * across message boundaries, a writer waits for credit beyond its window,
 * and a peer that breaks a rule (too large a message, past the window, text
 * that is not a credit) is cut off.
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import {
  MAX_MESSAGE_BYTES,
  type SocketLike,
  WebSocketStream,
  WINDOW_BYTES,
} from "../src/transport/websocket_stream.ts";
import { ProtocolError } from "../src/protocol/errors.ts";
import { randomBytes } from "./_random.ts";

type Listener = (e: { data?: unknown }) => void;

/** One end of an in-memory WebSocket; `peer` receives what it sends, a task later. */
class FakeSocket implements SocketLike {
  binaryType: BinaryType = "blob";
  readyState = 1;
  peer: FakeSocket | null = null;
  sent: (string | Uint8Array)[] = [];
  #listeners = new Map<string, Listener[]>();

  addEventListener(type: string, fn: Listener): void {
    this.#listeners.set(type, [...this.#listeners.get(type) ?? [], fn]);
  }

  dispatch(type: string, e: { data?: unknown } = {}): void {
    for (const fn of this.#listeners.get(type) ?? []) fn(e);
  }

  send(data: string | ArrayBufferLike | ArrayBufferView): void {
    const copy = typeof data === "string" ? data : new Uint8Array(
      ArrayBuffer.isView(data)
        ? data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)
        : data.slice(0),
    );
    this.sent.push(copy);
    const peer = this.peer;
    setTimeout(() =>
      peer?.dispatch("message", { data: typeof copy === "string" ? copy : copy.buffer })
    );
  }

  close(): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    const peer = this.peer;
    setTimeout(() => {
      this.dispatch("close");
      if (peer && peer.readyState !== 3) peer.close();
    });
  }
}

function pair(): [FakeSocket, FakeSocket] {
  const a = new FakeSocket();
  const b = new FakeSocket();
  a.peer = b;
  b.peer = a;
  return [a, b];
}

async function readExactly(stream: WebSocketStream, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let at = 0;
  while (at < n) {
    const got = await stream.read(out.subarray(at, Math.min(n, at + 70_000)));
    if (got === null) throw new Error("ended early");
    at += got;
  }
  return out;
}

Deno.test("bytes cross a WebSocket whole and in order, in messages of at most 1 MiB, past the window", async () => {
  const [a, b] = pair();
  const writer = new WebSocketStream(a);
  const reader = new WebSocketStream(b);
  const data = randomBytes(WINDOW_BYTES * 2 + 12345);
  const writing = (async () => {
    for (let at = 0; at < data.length;) at += await writer.write(data.subarray(at));
  })();
  assertEquals(await readExactly(reader, data.length), data);
  await writing;
  const binary = a.sent.filter((m) => typeof m !== "string") as Uint8Array[];
  assert(binary.every((m) => m.length <= MAX_MESSAGE_BYTES));
  assert(b.sent.length > 0 && b.sent.every((m) => typeof m === "string"), "no credits were sent");
  writer.close();
  assertEquals(await reader.read(new Uint8Array(10)), null);
});

Deno.test("a writer without credit waits at its window", async () => {
  const [a, b] = pair();
  const writer = new WebSocketStream(a);
  new WebSocketStream(b); // receives, never reads: never credits
  let written = 0;
  const writing = (async () => {
    const chunk = new Uint8Array(MAX_MESSAGE_BYTES);
    for (;;) written += await writer.write(chunk);
  })();
  await new Promise((r) => setTimeout(r, 100));
  assertEquals(written, WINDOW_BYTES);
  writer.close();
  await assertRejects(() => writing);
});

for (
  const [name, messages] of [
    ["a binary message over 1 MiB", [new Uint8Array(MAX_MESSAGE_BYTES + 1).buffer]],
    [
      "binary past the window",
      Array.from({ length: 9 }, () => new Uint8Array(MAX_MESSAGE_BYTES).buffer),
    ],
    ["a text message that is not a credit", ["hello"]],
    ["a credit for bytes never sent", ["1"]],
  ] as const
) {
  Deno.test(`a peer that sends ${name} is cut off`, async () => {
    const [a] = pair();
    const stream = new WebSocketStream(a);
    for (const data of messages) a.dispatch("message", { data });
    await assertRejects(() => stream.read(new Uint8Array(10)), ProtocolError);
    assertEquals(a.readyState, 3);
  });
}
