/** The secure channel's byte stream (src/transport/secure_stream.ts), on in-memory connections. */
import { assert, assertEquals, assertRejects } from "@std/assert";
import { concat } from "@std/bytes";
import { ProtocolError } from "../src/protocol/errors.ts";
import { type Aead, SUITES } from "../src/transport/aead.ts";
import { nodeAead } from "../src/transport/aead_node.ts";
import { loadOpensslAead } from "../src/transport/aead_openssl.ts";
import { memoryStream } from "./_memory_stream.ts";
import {
  MAX_RECORD_PAYLOAD,
  parseRecordHeader,
  RECORD_HEADER_BYTES,
  recordLength,
  RecordOpener,
  RecordSealer,
} from "../src/transport/record_layer.ts";
import { READ_AHEAD, SecureStream } from "../src/transport/secure_stream.ts";

const SECRET = Uint8Array.from({ length: 32 }, (_, i) => 7 * i + 1);
const utf8 = (s: string) => new TextEncoder().encode(s);

/** Reads `stream` to its end with a buffer of `size` bytes; returns everything read. */
async function readAll(stream: SecureStream, size: number): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const buf = new Uint8Array(size);
  for (;;) {
    const n = await stream.read(buf);
    if (n === null) return concat(parts);
    assert(n > 0, "read() returned 0 bytes");
    parts.push(buf.slice(0, n));
  }
}

function payloadOf(size: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: size }, (_, i) => (i * 31 + seed) & 0xff);
}

const engines: Aead[] = SUITES.flatMap((suite) => {
  const openssl = loadOpensslAead(suite);
  return openssl === null ? [nodeAead(suite)] : [nodeAead(suite), openssl];
});

for (const aead of engines) {
  const test = (name: string, fn: () => Promise<void>) =>
    Deno.test(`${name} [${aead.suite}, ${aead.engine}]`, fn);
  const reader = (bytes: Uint8Array, step?: number) =>
    new SecureStream(
      memoryStream(bytes, step),
      new RecordSealer(SECRET, "s2c", { aead }),
      new RecordOpener(SECRET, "c2s", { aead }),
      new Uint8Array(0),
    );

  test("SecureStream.read() returns the records' payloads in order, whether it decrypts into the caller's buffer or copies", async () => {
    const payloads = [utf8("hello"), new Uint8Array(0), payloadOf(70_000, 1), payloadOf(3, 2)];
    const sealer = new RecordSealer(SECRET, "c2s", { aead });
    const wire = concat([...payloads.map((p) => sealer.seal(p)), sealer.sealClose()]);
    const expected = concat(payloads);
    // 1 MiB: every record fits, so it is decrypted straight into the buffer; 4 bytes: most
    // do not, so they are decrypted in place and copied out in pieces. Reads of the
    // connection come in odd sizes, so records arrive split.
    for (const size of [MAX_RECORD_PAYLOAD, 4, 70_001]) {
      for (const step of [1 << 30, 7, 65_536]) {
        assertEquals(
          await readAll(reader(wire.slice(), step), size),
          expected,
          `buffer ${size}, step ${step}`,
        );
      }
    }
  });

  test("SecureStream.read() never asks the connection for more than READ_AHEAD bytes past the record it needs", async () => {
    // Bytes read past a record are moved to the front of the buffer when the next record
    // does not fit behind them: unbounded reads moved most of a large transfer that way.
    const sealer = new RecordSealer(SECRET, "c2s", { aead });
    const payloads = [payloadOf(MAX_RECORD_PAYLOAD, 4), payloadOf(65_541, 5)];
    const records = [...payloads, ...payloads, payloads[0]!].map((p) => sealer.seal(p));
    const wire = concat([...records, sealer.sealClose()]);
    const conn = memoryStream(wire);
    const asked: number[] = [];
    const read = conn.read.bind(conn);
    conn.read = (p) => {
      asked.push(p.length);
      return read(p);
    };
    const stream = new SecureStream(
      conn,
      new RecordSealer(SECRET, "s2c", { aead }),
      new RecordOpener(SECRET, "c2s", { aead }),
      new Uint8Array(0),
    );
    assertEquals(
      await readAll(stream, 2 * MAX_RECORD_PAYLOAD),
      concat(records.map((_, i) => payloads[i % 2])),
    );
    const largest = recordLength(MAX_RECORD_PAYLOAD) + READ_AHEAD;
    assert(asked.every((n) => n <= largest), `asked for ${Math.max(...asked)} bytes`);
    // The first read, for a header, still asks for READ_AHEAD more: many small records at once.
    assertEquals(asked[0], RECORD_HEADER_BYTES + READ_AHEAD);
  });

  test("SecureStream takes bytes read past the handshake, however many", async () => {
    // Three full records: more than its input buffer holds.
    const sealer = new RecordSealer(SECRET, "c2s", { aead });
    const payloads = [1, 2, 3].map((seed) => payloadOf(MAX_RECORD_PAYLOAD, seed));
    const leftover = concat([...payloads.map((p) => sealer.seal(p)), sealer.sealClose()]);
    const stream = new SecureStream(
      memoryStream(new Uint8Array(0)),
      new RecordSealer(SECRET, "s2c", { aead }),
      new RecordOpener(SECRET, "c2s", { aead }),
      leftover,
    );
    assertEquals(await readAll(stream, MAX_RECORD_PAYLOAD), concat(payloads));
  });

  test("SecureStream.read() reports a cut stream as truncated, even after whole records", async () => {
    const sealer = new RecordSealer(SECRET, "c2s", { aead });
    const one = sealer.seal(utf8("part"));
    for (const wire of [one, concat([one, sealer.seal(utf8("more")).subarray(0, 9)])]) {
      const stream = reader(wire);
      const buf = new Uint8Array(1024);
      assertEquals(await stream.read(buf), 4);
      const err = await assertRejects(() => stream.read(buf), ProtocolError);
      assertEquals(err.code, "truncated");
    }
  });

  test("SecureStream.read() hands out no byte of a record that fails authentication", async () => {
    const marker = utf8("attack at dawn, attack at dawn");
    for (const size of [MAX_RECORD_PAYLOAD, 5]) {
      const sealer = new RecordSealer(SECRET, "c2s", { aead });
      const wire = concat([sealer.seal(marker), sealer.sealClose()]);
      wire[RECORD_HEADER_BYTES + 3] ^= 0x40; // flip a ciphertext bit
      const stream = reader(wire);
      const buf = new Uint8Array(size);
      const err = await assertRejects(() => stream.read(buf), ProtocolError);
      assertEquals(err.code, "bad-record");
      // Nothing decrypted is left in the caller's buffer (OpenSSL decrypts before it verifies).
      assert(!buf.some((b, i) => b !== 0 && b === marker[i]), `buffer ${size} holds plaintext`);
    }
  });

  test("SecureStream.write() sends a frame buffer of 1 MiB and a few bytes as two records in one write", async () => {
    for (
      const size of [MAX_RECORD_PAYLOAD + 5, 3 * MAX_RECORD_PAYLOAD + 1, 10, MAX_RECORD_PAYLOAD]
    ) {
      const conn = memoryStream(new Uint8Array(0));
      const stream = new SecureStream(
        conn,
        new RecordSealer(SECRET, "c2s", { aead }),
        new RecordOpener(SECRET, "s2c", { aead }),
        new Uint8Array(0),
      );
      const data = payloadOf(size, 3);
      assertEquals(await stream.write(data), size);
      if (size === MAX_RECORD_PAYLOAD + 5) assertEquals(conn.written.length, 1);
      // Every write holds whole records, and together they open to the data.
      const opener = new RecordOpener(SECRET, "c2s", { aead });
      const back: Uint8Array[] = [];
      for (const write of conn.written) {
        for (let at = 0; at < write.length;) {
          const end = at + RECORD_HEADER_BYTES + parseRecordHeader(write.subarray(at));
          back.push(opener.open(write.slice(at, end))!.slice());
          at = end;
        }
      }
      assertEquals(concat(back), data, `size ${size}`);
    }
  });
}
