/**
 * The wrong-code budget against a running server: however many guesses one
 * address sends at once, it is answered at most `lockAfter` key shares (each
 * one a code it can test) before the lock, and the rest are refused; one
 * host cannot hold the connection slots with connections that say nothing.
 */
import { assert, assertEquals, assertGreaterOrEqual, assertLess } from "@std/assert";
import { join } from "node:path";
import { FrameType } from "../src/protocol/frame.ts";
import { decodeError } from "../src/protocol/messages.ts";
import { Channel, encodePreamble, PROTOCOL_VERSION } from "../src/protocol/preamble.ts";
import { PeerRefused, senderOpen, WrongCode } from "../src/transport/channel.ts";
import { FrameReader, FrameWriter } from "../src/transport/frame_io.ts";
import { RawClient, startServer, tempDir, type TestServer, waitFor } from "./_harness.ts";

const WRONG = "0000-wrong-guess-here";

/**
 * One guess with a wrong code: "key-share" when the server answered with its
 * KEY_SHARE (the guesser could test its code), else the code of the ERROR
 * it was refused with ("busy", "locked-out"), or what else happened.
 */
async function guess(port: number): Promise<string> {
  const client = await RawClient.connect(port);
  try {
    const keys = await client.exchangeKeys({ code: WRONG });
    return keys === null ? "closed" : "accepted";
  } catch (err) {
    if (err instanceof WrongCode) return "key-share";
    if (err instanceof PeerRefused) return err.code;
    return `failed: ${err}`;
  } finally {
    client.close();
  }
}

function tally(outcomes: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const o of outcomes) counts[o] = (counts[o] ?? 0) + 1;
  return counts;
}

async function withServer(
  opts: Parameters<typeof startServer>[1],
  body: (server: TestServer) => Promise<void>,
): Promise<void> {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const server = await startServer(join(base, "inbox"), opts);
  try {
    await body(server);
  } finally {
    await server.close();
  }
}

Deno.test("30 wrong guesses sent at once from one address get at most 10 key shares; the rest are refused", async () => {
  // The default guard and pre-authentication bounds, and the default handshake deadline.
  await withServer({ limits: { handshakeTimeoutMs: 10_000 } }, async (server) => {
    const outcomes = await Promise.all(Array.from({ length: 30 }, () => guess(server.port)));
    const counts = tally(outcomes);
    assert((counts["key-share"] ?? 0) <= 10, `answered: ${JSON.stringify(counts)}`);
    assertEquals(
      (counts["key-share"] ?? 0) + (counts["busy"] ?? 0) + (counts["locked-out"] ?? 0),
      30,
      `every other guess is refused: ${JSON.stringify(counts)}`,
    );
  });
});

Deno.test("with no bound on concurrency, pending guesses alone hold 30 parallel guesses to 10 key shares", async () => {
  await withServer({
    guardPolicy: {
      slowAfter: 3,
      lockAfter: 10,
      windowMs: 60_000,
      lockMs: 60_000,
      maxDelayMs: 200,
      maxConcurrent: 64,
    },
    preAuth: { perAddress: 64 },
  }, async (server) => {
    const outcomes = await Promise.all(Array.from({ length: 30 }, () => guess(server.port)));
    assertEquals(tally(outcomes), { "key-share": 10, "locked-out": 20 });
    await waitFor(
      "30 sessions to end",
      () => server.events.filter((e) => e.type === "session-end").length === 30,
    );
    const wrong = server.events.filter((e) => e.type === "wrong-code");
    assertEquals(wrong.length, 10);
    assertEquals(wrong.filter((e) => e.type === "wrong-code" && e.locked).length, 1);
  });
});

Deno.test("a guesser that keeps 30 guesses in flight and retries is answered 10 key shares, then locked out", async () => {
  await withServer({
    guardPolicy: { slowAfter: 3, lockAfter: 10, windowMs: 60_000, lockMs: 60_000, maxDelayMs: 100 },
  }, async (server) => {
    let keyShares = 0;
    const others: string[] = [];
    const deadline = Date.now() + 30_000;
    const worker = async () => {
      while (Date.now() < deadline) {
        const outcome = await guess(server.port);
        if (outcome === "key-share") keyShares++;
        else if (outcome === "locked-out") return;
        else if (outcome !== "busy") others.push(outcome);
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    await Promise.all(Array.from({ length: 30 }, worker));
    assertEquals(others, []);
    assertEquals(keyShares, 10);
    // Locked: the right code is refused too. The server may still be closing
    // the workers' last connections (each holds a pre-authentication slot
    // until the server sees it end), so a "busy" answer is retried.
    let err: unknown = null;
    for (let tries = 0; tries < 100; tries++) {
      const client = await RawClient.connect(server.port);
      try {
        err = await client.exchangeKeys().then(() => null, (e) => e);
      } finally {
        client.close();
      }
      if (!(err instanceof PeerRefused && err.code === "busy")) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert(err instanceof PeerRefused && err.code === "locked-out", `${err}`);
  });
});

Deno.test("failures over the global budget slow every key share, and the server says so once", async () => {
  await withServer({
    guardPolicy: {
      slowAfter: 100,
      lockAfter: 100,
      windowMs: 60_000,
      lockMs: 60_000,
      maxDelayMs: 5000,
      globalSlowAfter: 3,
      globalDelayMs: 1000,
    },
  }, async (server) => {
    const timed = async () => {
      const started = performance.now();
      assertEquals(await guess(server.port), "key-share");
      return performance.now() - started;
    };
    for (let i = 0; i < 3; i++) assertLess(await timed(), 800);
    await timed(); // the 4th failure is over the budget
    await waitFor(
      "the guess-slowdown notice",
      () => server.events.some((e) => e.type === "guess-slowdown"),
    );
    assertGreaterOrEqual(await timed(), 1000);
    await timed();
    await waitFor(
      "6 sessions to end",
      () => server.events.filter((e) => e.type === "session-end").length === 6,
    );
    const notices = server.events.filter((e) => e.type === "guess-slowdown");
    assertEquals(notices.length, 1);
    assertEquals(notices[0], {
      type: "guess-slowdown",
      session: notices[0]!.session,
      failures: 3,
      windowMinutes: 1,
      delayMs: 1000,
    });
  });
});

/** A connection that says nothing; resolves with how long until the server closed it, and what it sent. */
async function silent(port: number, hostname = "127.0.0.1") {
  const conn = await Deno.connect({ hostname, port });
  const started = performance.now();
  const received: number[] = [];
  const buf = new Uint8Array(256);
  const closed = (async () => {
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        received.push(...buf.subarray(0, n));
      }
    } catch { /* reset: closed */ }
    try {
      conn.close();
    } catch { /* closed */ }
    return { ms: performance.now() - started, received: new Uint8Array(received) };
  })();
  return { conn, closed };
}

/** Opens a connection as a sender does, up to the receiver's first frame after its preamble. */
async function firstAnswer(port: number, hostname = "127.0.0.1") {
  const conn = await Deno.connect({ hostname, port });
  try {
    const writer = new FrameWriter(conn);
    await writer.raw(encodePreamble({ version: PROTOCOL_VERSION, channel: Channel.cpace }));
    await writer.frame(FrameType.CHANNEL_OPEN, senderOpen().payload);
    await writer.flush();
    const reader = new FrameReader(conn);
    if ((await reader.readRaw(8)) === null) return "closed";
    const frame = await reader.next();
    if (frame === null) return "closed";
    if (frame.type === FrameType.ERROR) return decodeError(frame.payload).code;
    return frame.type === FrameType.CHANNEL_OPEN ? "channel-open" : `frame ${frame.type}`;
  } finally {
    conn.close();
  }
}

Deno.test("silent connections are closed after the first-frame deadline, and one address holds at most perAddress", async () => {
  await withServer({ preAuth: { perAddress: 3, firstFrameMs: 400 } }, async (server) => {
    const quiet = await Promise.all([
      silent(server.port),
      silent(server.port),
      silent(server.port),
    ]);
    await waitFor(
      "3 sessions to start",
      () => server.events.filter((e) => e.type === "session-start").length === 3,
    );
    assertEquals(await firstAnswer(server.port), "busy", "a fourth from the same address");
    for (const { closed } of quiet) {
      const { ms, received } = await closed;
      assertGreaterOrEqual(ms, 350);
      // Well before the handshake deadline (5 s in these tests).
      assertLess(ms, 3000);
      assertEquals(received.length, 0, "nothing is sent to a peer that never spoke");
    }
    await waitFor(
      "3 sessions to end",
      () => server.events.filter((e) => e.type === "session-end").length === 3,
    );
    const ends = server.events.filter((e) => e.type === "session-end");
    for (const end of ends) {
      assert(end.type === "session-end" && end.error === "timed out: the sender sent nothing");
    }
    assertEquals(await firstAnswer(server.port), "channel-open", "the slots are free again");
  });
});

/** Whether this machine has an IPv6 loopback to connect from. */
function hasIpv6Loopback(): boolean {
  try {
    Deno.listen({ hostname: "::1", port: 0 }).close();
    return true;
  } catch {
    return false;
  }
}

Deno.test({
  name: "while one address holds all its pre-authentication slots, another address gets through",
  ignore: !hasIpv6Loopback(),
  async fn() {
    // Listening on "::" sees 127.0.0.1 as ::ffff:127.0.0.1 (the same group as 127.0.0.1) and ::1
    // as another group.
    await withServer(
      { host: "::", preAuth: { perAddress: 2, firstFrameMs: 5_000 } },
      async (server) => {
        const quiet = [await silent(server.port), await silent(server.port)];
        await waitFor(
          "2 sessions to start",
          () => server.events.filter((e) => e.type === "session-start").length === 2,
        );
        assertEquals(await firstAnswer(server.port, "127.0.0.1"), "busy");
        assertEquals(await firstAnswer(server.port, "::1"), "channel-open");
        for (const { conn } of quiet) conn.close();
      },
    );
  },
});
