/**
 * The sender against peers that are not (quite) ferry servers: it must fail
 * with one clear line, never hang or crash.
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { join } from "node:path";
import { ConnectFailed, ConnectionLost, FerryError } from "../src/errors.ts";
import { send, type SendEvent } from "../src/client/send_session.ts";
import { resolveSources } from "../src/client/walk.ts";
import { encodeFrame, FrameType } from "../src/protocol/frame.ts";
import { encodeJson } from "../src/protocol/messages.ts";
import type { DigestName } from "../src/protocol/digests.ts";
import { encodePreamble, PREAMBLE_BYTES } from "../src/protocol/preamble.ts";
import { FrameReader } from "../src/transport/frame_io.ts";
import { tempDir } from "./_harness.ts";

/** A one-connection fake server that answers whatever arrives with `reply`, then closes. */
async function fakeServer(reply: Uint8Array, run: (port: number) => Promise<void>) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    const conn = await listener.accept();
    await conn.read(new Uint8Array(4096));
    await conn.write(reply);
    conn.close();
  })();
  try {
    await run((listener.addr as Deno.NetAddr).port);
  } finally {
    listener.close();
    await serving;
  }
}

async function sendOne(
  port: number,
  timeoutMs = 5000,
  extra: {
    plaintext?: boolean;
    digests?: DigestName[];
    retries?: number;
    retryDelayMs?: number;
    onEvent?: (event: SendEvent) => void;
  } = {},
) {
  await using tmp = await tempDir();
  const dir = tmp.path;
  await Deno.writeTextFile(join(dir, "a.txt"), "hello");
  return await send({
    to: { host: "127.0.0.1", port },
    sources: await resolveSources([join(dir, "a.txt")], "stdin"),
    connectTimeoutMs: timeoutMs,
    idleTimeoutMs: timeoutMs,
    retries: 0,
    software: "ferry/test",
    onEvent: () => {},
    ...extra,
  });
}

Deno.test("send() names both protocol versions when the server speaks another", async () => {
  const reply = new Uint8Array([
    ...encodePreamble({ version: 9, channel: 0 }),
    ...encodeFrame(
      FrameType.ERROR,
      encodeJson({ code: "unsupported-version", message: "v9 only" }),
    ),
  ]);
  await fakeServer(reply, async (port) => {
    const err = await assertRejects(() => sendOne(port), FerryError);
    assertEquals(
      err.message,
      `127.0.0.1:${port} speaks ferry protocol version 9, this ferry speaks 1: use matching ferry versions`,
    );
    assertEquals(err.code, "protocol");
  });
});

Deno.test("send() says so when the peer is not a ferry server", async () => {
  await fakeServer(new TextEncoder().encode("HTTP/1.1 400 Bad Request\r\n\r\n"), async (port) => {
    const err = await assertRejects(() => sendOne(port), FerryError);
    assertEquals(err.message, `127.0.0.1:${port} is not a ferry server`);
    assertEquals(err.code, "protocol");
  });
});

Deno.test("send() reports a server's refusal during the handshake in its own words", async () => {
  const reply = new Uint8Array([
    ...encodePreamble({ version: 1, channel: 0 }),
    ...encodeFrame(FrameType.ERROR, encodeJson({ code: "busy", message: "peer text: all done" })),
  ]);
  await fakeServer(reply, async (port) => {
    const err = await assertRejects(() => sendOne(port), FerryError);
    // A plain ERROR is unauthenticated: its code is explained, its text is not shown.
    assertEquals(
      err.message,
      `127.0.0.1:${port} refused the session: it is busy (too many senders at once) (busy)`,
    );
    // Busy: worth trying again (send did, --retries 0 times), reported as refused.
    assert(err instanceof ConnectionLost);
    assertEquals(err.code, "refused");
  });
});

Deno.test("send() gives up on a silent server after its timeout", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  try {
    const err = await assertRejects(
      () => sendOne((listener.addr as Deno.NetAddr).port, 300),
      FerryError,
    );
    assertEquals(
      err.message,
      `127.0.0.1:${(listener.addr as Deno.NetAddr).port} stopped responding for 0.3 s`,
    );
    assert(err instanceof ConnectionLost);
    assertEquals(err.code, "timeout");
  } finally {
    (await accepted).close();
    listener.close();
  }
});

Deno.test("send() retries by the error's class: a lost connection, then a failed reconnection", async () => {
  // Nothing listens: the first connection's failure is reported at once, never retried.
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const nobody = (closed.addr as Deno.NetAddr).port;
  closed.close();
  const first: SendEvent[] = [];
  const refused = await assertRejects(
    () => sendOne(nobody, 5000, { retries: 3, retryDelayMs: 10, onEvent: (e) => first.push(e) }),
    ConnectFailed,
  );
  assertEquals(refused.code, "connect-refused");
  assertEquals(first.filter((e) => e.type === "retry").length, 0);
  // A receiver that drops the connection and is gone when the sender comes back (restarting).
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const dropping = (async () => {
    const conn = await listener.accept();
    listener.close();
    conn.close();
  })();
  const events: SendEvent[] = [];
  try {
    const err = await assertRejects(
      () => sendOne(port, 5000, { retries: 2, retryDelayMs: 10, onEvent: (e) => events.push(e) }),
      ConnectFailed,
    );
    assertEquals(err.code, "connect-refused");
    const retries = events.filter((e) => e.type === "retry");
    assertEquals(retries.length, 2);
    assertStringIncludes(
      retries[0]!.type === "retry" ? retries[0]!.reason : "",
      `127.0.0.1:${port}`,
    );
    assertStringIncludes(
      retries[1]!.type === "retry" ? retries[1]!.reason : "",
      "connection refused",
    );
  } finally {
    await dropping;
  }
});

Deno.test("send() refuses a WELCOME that names a digest it did not offer", async () => {
  const welcome = {
    software: "fake",
    digest: "xxh128",
    features: [],
    limits: { maxBatchEntries: 16, maxFrame: 65536, maxPathBytes: 4096 },
  };
  const reply = new Uint8Array([
    ...encodePreamble({ version: 1, channel: 0 }),
    ...encodeFrame(FrameType.WELCOME, encodeJson(welcome)),
  ]);
  await fakeServer(reply, async (port) => {
    const err = await assertRejects(
      () => sendOne(port, 5000, { plaintext: true, digests: ["sha256"] }),
      FerryError,
    );
    assertStringIncludes(err.message, "the receiver chose digest xxh128, not offered");
    assertEquals(err.code, "protocol");
  });
});

Deno.test("send() keeps two batches open while it waits for their plans", async () => {
  await using tmp = await tempDir();
  const dir = tmp.path;
  for (let i = 0; i < 10; i++) await Deno.writeTextFile(join(dir, `f${i}.txt`), "x");
  const welcome = {
    software: "fake",
    digest: "sha256",
    features: [],
    limits: { maxBatchEntries: 1, maxFrame: 65536, maxPathBytes: 4096 },
  };
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let announced = 0;
  const serving = (async () => {
    const conn = await listener.accept();
    const reader = new FrameReader(conn);
    await reader.readRaw(PREAMBLE_BYTES);
    await conn.write(
      new Uint8Array([
        ...encodePreamble({ version: 1, channel: 0 }),
        ...encodeFrame(FrameType.WELCOME, encodeJson(welcome)),
      ]),
    );
    // HELLO, then ANNOUNCEs until the sender goes quiet, waiting for a PLAN that never comes.
    let pending = reader.next();
    for (;;) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const quiet = new Promise<"quiet">((r) => timer = setTimeout(() => r("quiet"), 500));
      const frame = await Promise.race([pending, quiet]);
      clearTimeout(timer);
      if (frame === "quiet" || frame === null) break;
      if (frame.type === FrameType.ANNOUNCE) announced++;
      pending = reader.next();
    }
    pending.catch(() => {});
    conn.close();
  })();
  try {
    await send({
      to: { host: "127.0.0.1", port: (listener.addr as Deno.NetAddr).port },
      sources: await resolveSources([dir], "stdin"),
      connectTimeoutMs: 5000,
      idleTimeoutMs: 5000,
      retries: 0,
      software: "ferry/test",
      plaintext: true,
      onEvent: () => {},
    }).catch(() => {});
    await serving;
    // One batch to send and one announced ahead, though the protocol allows ANNOUNCE_WINDOW.
    assertEquals(announced, 2);
  } finally {
    listener.close();
  }
});
