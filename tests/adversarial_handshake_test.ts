/**
 * Adversarial tests of the receiver, the handshake: what is not ferry, garbage
 * before and after the preamble, unknown versions, channels and digests, and
 * senders that stay silent.
 *
 * The arena every test runs in, and what it checks afterwards: _arena.ts.
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { FrameType } from "../src/protocol/frame.ts";
import { Channel, encodePreamble, PROTOCOL_VERSION } from "../src/protocol/preamble.ts";
import { randomBytes } from "./_harness.ts";
import {
  announce,
  drainRaw,
  encoder,
  expectError,
  expectSilentOrError,
  file,
  inArena,
  sendData,
  sessionsEnded,
  STREAMED,
  waitForStaged,
} from "./_arena.ts";

// ---------------------------------------------------------------------------
// 6. Garbage and protocol violations
// ---------------------------------------------------------------------------

const NOT_FERRY: [what: string, bytes: Uint8Array][] = [
  ["random bytes", Uint8Array.from([0x00, ...randomBytes(7)])],
  ["an HTTP request", encoder.encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n".slice(0, 8))],
  ["a TLS-looking hello", Uint8Array.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01])],
  ["a lower-case magic", encoder.encode("ferry\x01\x00\x00")],
];

for (const [what, bytes] of NOT_FERRY) {
  Deno.test(`server closes a connection that starts with ${what} instead of the preamble`, async () => {
    await inArena(async (arena) => {
      const client = await arena.connect();
      await client.raw(bytes);
      // No preamble back, no WELCOME: at most ERROR "not-ferry" (PROTOCOL.md §8.3), then close.
      await expectSilentOrError(client, "not-ferry");
      return [];
    });
  });
}

Deno.test("server survives random garbage instead of the preamble and after it", async () => {
  await inArena(async (arena) => {
    for (let i = 0; i < 20; i++) {
      const client = await arena.connect();
      const garbage = randomBytes(1 + (i * 397) % 4096);
      const prefix = i % 2 === 0
        ? encodePreamble({ version: PROTOCOL_VERSION, channel: Channel.plain })
        : new Uint8Array(0);
      await client.raw(Uint8Array.from([...prefix, ...garbage]));
      try {
        client.conn.closeWrite();
      } catch { /* the server already closed */ }
      await drainRaw(client);
      client.close();
    }
    return [];
  });
});

Deno.test("server survives random frames after the handshake", async () => {
  const types = Object.values(FrameType);
  await inArena(async (arena) => {
    for (let i = 0; i < 30; i++) {
      const client = await arena.open();
      const type = types[i % types.length]!;
      const payload = type === FrameType.DONE ? new Uint8Array(0) : randomBytes(1 + (i * 31) % 77);
      await client.send(type, payload);
      try {
        client.conn.closeWrite();
      } catch { /* the server already closed */ }
      await client.drain();
      client.close();
    }
    return [];
  });
});

Deno.test("server answers an unknown protocol version with its preamble and ERROR 'unsupported-version'", async () => {
  await inArena(async (arena) => {
    const client = await arena.connect();
    await client.raw(encodePreamble({ version: 7, channel: Channel.plain }));
    const preamble = await client.reader.readRaw(8);
    assertEquals(preamble, encodePreamble({ version: PROTOCOL_VERSION, channel: Channel.cpace }));
    const message = await expectError(client, "unsupported-version");
    assertMatch(message, new RegExp(`version ${PROTOCOL_VERSION}\\b`));
    assertMatch(message, /version 7\b/);
    return [];
  });
});

Deno.test("server answers an unknown channel with ERROR 'unsupported-channel'", async () => {
  await inArena(async (arena) => {
    const client = await arena.connect();
    await client.raw(encodePreamble({ version: PROTOCOL_VERSION, channel: 9 }));
    assert(await client.reader.readRaw(8) !== null);
    assertMatch(await expectError(client, "unsupported-channel"), /9/);
    return [];
  });
});

Deno.test("server answers a HELLO without a common digest with ERROR 'no-common-digest'", async () => {
  await inArena(async (arena) => {
    const client = await arena.connect();
    assert(await client.channel());
    await client.json(FrameType.HELLO, { software: "x", digests: ["md5", "crc32"] });
    await expectError(client, "no-common-digest");
    return [];
  });
});

Deno.test("server drops a connection that stays silent past the handshake timeout", async () => {
  await inArena(async (arena) => {
    const client = await arena.connect();
    const started = Date.now();
    await drainRaw(client);
    assert(Date.now() - started < 5_000, "closed by the handshake timeout");
    return [];
  }, { server: { handshakeTimeoutMs: 300 } });
});

Deno.test("server drops a sender that goes quiet mid-file and removes its temp file", async () => {
  await inArena(async (arena) => {
    const client = await arena.open();
    await announce(client, 0, [file(1, "stalled.bin", STREAMED)]);
    await sendData(client, randomBytes(4000));
    await waitForStaged(arena.dir);
    assertEquals(await client.drain(), [], "the server closes without a word");
    await sessionsEnded(arena.srv);
    return [];
  }, { server: { idleTimeoutMs: 300 } });
});
