/** The record layer (src/transport/record_layer.ts). */
import { assert, assertEquals, assertThrows } from "@std/assert";
import { expand } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { createCipheriv, createDecipheriv } from "node:crypto";
import { type Aead, defaultAead, SUITES } from "../src/transport/aead.ts";
import { nodeAead } from "../src/transport/aead_node.ts";
import { loadOpensslAead } from "../src/transport/aead_openssl.ts";
import {
  EPOCH_RECORDS,
  MAX_RECORD_BODY,
  MAX_RECORD_PAYLOAD,
  parseRecordHeader,
  RECORD_HEADER_BYTES,
  RECORD_TAG_BYTES,
  RecordError,
  type RecordErrorCode,
  recordLength,
  RecordOpener,
  RecordSealer,
} from "../src/transport/record_layer.ts";
import { loadShortHashes } from "../src/transport/short_hashes.ts";

// The handshake's hashes where no OpenSSL loads (@noble/hashes) are imported by this first.
await loadShortHashes();

function hex(s: string): Uint8Array {
  const clean = s.replace(/\s+/g, "");
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

const toHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const utf8 = (s: string) => new TextEncoder().encode(s);

const KEY = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
const OTHER_KEY = Uint8Array.from({ length: 32 }, (_, i) => 255 - i);

function recordCode(fn: () => unknown): RecordErrorCode {
  return (assertThrows(fn, RecordError) as RecordError).code;
}

function header(length: number): Uint8Array {
  const h = new Uint8Array(4);
  new DataView(h.buffer).setUint32(0, length);
  return h;
}

/**
 * The documented record key, computed here without record_layer.ts or key_schedule.ts:
 * HKDF-Expand(secret, lv_cat("ferry/1 record key", suite, u64be(epoch)), 32), where
 * every piece is shorter than 128 bytes, so its length prefix is one byte.
 */
function documentedRecordKey(secret: Uint8Array, suite: string, epoch: number): Uint8Array {
  const label = utf8("ferry/1 record key");
  const name = utf8(suite);
  const e = new Uint8Array(8);
  new DataView(e.buffer).setBigUint64(0, BigInt(epoch));
  const info = new Uint8Array([label.length, ...label, name.length, ...name, 8, ...e]);
  return expand(sha256, secret, info, 32);
}

for (const suite of SUITES) {
  const engines: Aead[] = [nodeAead(suite)];
  const openssl = loadOpensslAead(suite);
  if (openssl !== null) engines.push(openssl);
  else {
    Deno.test({
      name: `the record layer on the OpenSSL engine [${suite}]`,
      ignore: true, // no OpenSSL 3 libcrypto at a known path, or no ffi permission for it
      fn() {},
    });
  }
  for (const aead of engines) recordLayerTests(aead, engines);
}

/** Every record-layer test, on one AEAD engine: the engines of a suite must behave alike. */
function recordLayerTests(aead: Aead, ENGINES: readonly Aead[]): void {
  const test = (name: string, fn: () => void) =>
    Deno.test(`${name} [${aead.suite}, ${aead.engine}]`, fn);
  // node's typings list the AEAD algorithms by name; both suites are among them.
  const algorithm = aead.suite as "chacha20-poly1305";

  function pair(key = KEY) {
    return {
      sealer: new RecordSealer(key, "c2s", { aead }),
      opener: new RecordOpener(key, "c2s", { aead }),
    };
  }

  test("RecordSealer.seal() writes length | AEAD(type | payload) with the header as AAD, nonce = counter, and the epoch's derived key", () => {
    const { sealer } = pair();
    sealer.seal(utf8("first"));
    const record = sealer.seal(utf8("hello"));
    assertEquals(parseRecordHeader(record), 1 + 5 + 16);
    assertEquals(record.length, 4 + 1 + 5 + 16);
    // Independently: record #1 uses nonce 00..01 and AAD = the 4 header bytes.
    const nonce = hex("000000000000000000000001");
    const decipher = createDecipheriv(
      algorithm,
      documentedRecordKey(KEY, aead.suite, 0),
      nonce,
      { authTagLength: 16 },
    );
    decipher.setAAD(record.subarray(0, 4), { plaintextLength: record.length - 20 });
    decipher.setAuthTag(record.subarray(record.length - 16));
    const plain = decipher.update(record.subarray(4, record.length - 16));
    decipher.final();
    assertEquals(toHex(plain), "00" + toHex(utf8("hello")));
  });

  // ---------------------------------------------------------------------------
  // Round trips

  test("RecordOpener.open() returns what RecordSealer.seal() sealed, in order", () => {
    const { sealer, opener } = pair();
    const messages = [
      utf8("one"),
      new Uint8Array(0),
      utf8("three"),
      new Uint8Array(70_000).fill(7),
    ];
    for (const m of messages) assertEquals(opener.open(sealer.seal(m)), m);
    assertEquals(sealer.sequence, 4);
    assertEquals(opener.sequence, 4);
    assertEquals(opener.closed, false);
  });

  test("RecordSealer.seal() handles a full 1 MiB payload and refuses a larger one", () => {
    const { sealer, opener } = pair();
    const big = new Uint8Array(MAX_RECORD_PAYLOAD);
    crypto.getRandomValues(big.subarray(0, 65536));
    big.set(big.subarray(0, 65536), MAX_RECORD_PAYLOAD - 65536);
    const record = sealer.seal(big);
    assertEquals(record.length, RECORD_HEADER_BYTES + MAX_RECORD_BODY);
    assertEquals(opener.open(record), big);
    assertThrows(() => sealer.seal(new Uint8Array(MAX_RECORD_PAYLOAD + 1)), RangeError);
  });

  test("RecordSealer.seal() gives different ciphertexts for equal plaintexts", () => {
    const { sealer } = pair();
    const a = sealer.seal(utf8("same"));
    const b = sealer.seal(utf8("same"));
    assert(toHex(a) !== toHex(b));
  });

  test("the close record ends the stream on both sides", () => {
    const { sealer, opener } = pair();
    assertEquals(opener.open(sealer.seal(utf8("data"))), utf8("data"));
    assertEquals(opener.open(sealer.sealClose()), null);
    assert(opener.closed);
    assert(sealer.closed);
    opener.finish(); // a complete stream
    assertEquals(recordCode(() => sealer.seal(utf8("more"))), "closed");
    assertEquals(recordCode(() => sealer.sealClose()), "closed");
  });

  test("RecordOpener.open() rejects any record after the close record", () => {
    const { sealer, opener } = pair();
    const close = sealer.sealClose();
    opener.open(close);
    // Even a genuine record (sealed by a second sealer with the same key at seq 1).
    const replayed = new RecordSealer(KEY, "c2s", { aead });
    replayed.seal(utf8("x"));
    assertEquals(recordCode(() => opener.open(replayed.seal(utf8("after")))), "closed");
  });

  // ---------------------------------------------------------------------------
  // Tampering

  function flipEach(record: Uint8Array, positions: number[]) {
    for (const pos of positions) {
      for (const bit of [0, 7]) {
        const { sealer, opener } = pair();
        const genuine = sealer.seal(utf8("attack at dawn"));
        assertEquals(toHex(genuine), toHex(record)); // same key, same seq: same record
        const bad = genuine.slice();
        bad[pos]! ^= 1 << bit;
        assertThrows(() => opener.open(bad), RecordError);
        // The failure is final: the genuine record is refused afterwards too.
        assertEquals(recordCode(() => opener.open(genuine)), "closed");
      }
    }
  }

  test("RecordOpener.open() rejects a flipped bit in the header, ciphertext or tag", () => {
    const record = pair().sealer.seal(utf8("attack at dawn"));
    const ct = Array.from({ length: record.length - 4 - 16 }, (_, i) => 4 + i);
    const tag = Array.from({ length: 16 }, (_, i) => record.length - 16 + i);
    flipEach(record, [0, 1, 2, 3, ...ct, ...tag]);
  });

  test("RecordOpener.open() authenticates the header: a consistent but altered length fails", () => {
    const { sealer, opener } = pair();
    const record = sealer.seal(utf8("attack at dawn"));
    // Drop the last ciphertext byte and fix up the header so lengths agree again.
    const body = record.length - 4;
    const cut = new Uint8Array(record.length - 1);
    cut.set(header(body - 1));
    cut.set(record.subarray(4, record.length - 17), 4);
    cut.set(record.subarray(record.length - 16), cut.length - 16);
    assertEquals(recordCode(() => opener.open(cut)), "auth");
  });

  test("RecordOpener.open() rejects a record whose length disagrees with its header", () => {
    const { sealer } = pair();
    const record = sealer.seal(utf8("attack at dawn"));
    assertEquals(
      recordCode(() => pair().opener.open(record.subarray(0, record.length - 1))),
      "malformed",
    );
    const longer = new Uint8Array(record.length + 1);
    longer.set(record);
    assertEquals(recordCode(() => pair().opener.open(longer)), "malformed");
  });

  test("RecordOpener.open() rejects a replayed record", () => {
    const { sealer, opener } = pair();
    const r0 = sealer.seal(utf8("pay 10"));
    opener.open(r0.slice()); // open() may decrypt in place: replay the bytes as sent
    assertEquals(recordCode(() => opener.open(r0)), "auth");
  });

  test("RecordOpener.open() rejects a dropped record (a gap in the sequence)", () => {
    const { sealer, opener } = pair();
    const r0 = sealer.seal(utf8("a"));
    sealer.seal(utf8("b")); // dropped in transit
    const r2 = sealer.seal(utf8("c"));
    opener.open(r0);
    assertEquals(recordCode(() => opener.open(r2)), "auth");
  });

  test("RecordOpener.open() rejects reordered records", () => {
    const { sealer, opener } = pair();
    sealer.seal(utf8("a"));
    const r1 = sealer.seal(utf8("b"));
    assertEquals(recordCode(() => opener.open(r1)), "auth");
  });

  test("RecordOpener.open() rejects a record under the other direction's key", () => {
    const sealer = new RecordSealer(OTHER_KEY, "s2c", { aead });
    const opener = new RecordOpener(KEY, "c2s", { aead });
    assertEquals(recordCode(() => opener.open(sealer.seal(utf8("reflected")))), "auth");
  });

  test("RecordOpener.finish() reports a stream truncated before its close record", () => {
    const { sealer, opener } = pair();
    opener.open(sealer.seal(utf8("part 1")));
    opener.open(sealer.seal(utf8("part 2")));
    // The attacker cuts the connection here (or drops the close record).
    assertEquals(recordCode(() => opener.finish()), "truncated");
    // A stream with no records at all is truncated too.
    assertEquals(recordCode(() => pair().opener.finish()), "truncated");
  });

  test("RecordOpener.open() rejects a genuine close record moved to another position", () => {
    // A close record sealed at sequence 0 (e.g. from another session under the same key)
    // cannot end this stream at sequence 1.
    const { sealer, opener } = pair();
    const r0 = sealer.seal(utf8("a"));
    const close1 = sealer.sealClose();
    const other = new RecordSealer(KEY, "c2s", { aead });
    const close0 = other.sealClose(); // genuine close, but at sequence 0
    opener.open(r0);
    assertEquals(recordCode(() => opener.open(close0)), "auth");
    assertEquals(recordCode(() => opener.open(close1)), "closed"); // failure is final
  });

  // ---------------------------------------------------------------------------
  // Limits

  test("parseRecordHeader() rejects an oversize length before any allocation", () => {
    assertEquals(parseRecordHeader(header(MAX_RECORD_BODY)), MAX_RECORD_BODY);
    assertEquals(recordCode(() => parseRecordHeader(header(MAX_RECORD_BODY + 1))), "oversize");
    assertEquals(recordCode(() => parseRecordHeader(hex("ffffffff"))), "oversize");
    // Only the 4 header bytes are needed to refuse it.
    assertEquals(recordCode(() => pair().opener.open(hex("ffffffff"))), "oversize");
  });

  test("parseRecordHeader() rejects a length shorter than a tag and a short header", () => {
    assertEquals(recordCode(() => parseRecordHeader(header(0))), "malformed");
    assertEquals(recordCode(() => parseRecordHeader(header(RECORD_TAG_BYTES))), "malformed");
    assertEquals(parseRecordHeader(header(RECORD_TAG_BYTES + 1)), RECORD_TAG_BYTES + 1);
    assertEquals(recordCode(() => parseRecordHeader(new Uint8Array(3))), "malformed");
  });

  test("RecordSealer refuses to seal past its record cap, keeping the last for close", () => {
    const sealer = new RecordSealer(KEY, "c2s", { maxRecords: 3, aead });
    const opener = new RecordOpener(KEY, "c2s", { maxRecords: 3, aead });
    opener.open(sealer.seal(utf8("0")));
    opener.open(sealer.seal(utf8("1")));
    assertEquals(recordCode(() => sealer.seal(utf8("2"))), "limit");
    assertEquals(opener.open(sealer.sealClose()), null);
    opener.finish();
  });

  test("RecordSealer and RecordOpener reject keys that are not 32 bytes", () => {
    assertThrows(() => new RecordSealer(new Uint8Array(16), "c2s", { aead }), TypeError);
    assertThrows(() => new RecordOpener(new Uint8Array(33), "s2c", { aead }), TypeError);
  });

  test("RecordSealer copies its key: later changes to the caller's array do not matter", () => {
    const key = KEY.slice();
    const sealer = new RecordSealer(key, "c2s", { aead });
    key.fill(0);
    assertEquals(new RecordOpener(KEY, "c2s", { aead }).open(sealer.seal(utf8("ok"))), utf8("ok"));
  });

  /** Seals `inner` (type byte included) at sequence `seq` straight through node:crypto, from the spec. */
  function sealRaw(key: Uint8Array, seq: number, inner: Uint8Array): Uint8Array {
    const nonce = new Uint8Array(12);
    new DataView(nonce.buffer).setBigUint64(4, BigInt(seq));
    const out = new Uint8Array(4 + inner.length + 16);
    out.set(header(inner.length + 16));
    const recordKey = documentedRecordKey(key, aead.suite, Math.floor(seq / EPOCH_RECORDS));
    const cipher = createCipheriv(algorithm, recordKey, nonce, { authTagLength: 16 });
    cipher.setAAD(out.subarray(0, 4), { plaintextLength: inner.length });
    out.set(cipher.update(inner), 4);
    out.set(cipher.final(), 4 + inner.length);
    out.set(cipher.getAuthTag(), 4 + inner.length);
    return out;
  }

  test("RecordOpener.open() accepts a record built independently from the documented format", () => {
    const opener = new RecordOpener(KEY, "c2s", { aead });
    assertEquals(opener.open(sealRaw(KEY, 0, hex("00616263"))), utf8("abc"));
    assertEquals(opener.open(sealRaw(KEY, 1, hex("01"))), null);
    opener.finish();
  });

  test("RecordOpener.open() rejects an authenticated record of unknown type or a close with payload", () => {
    assertEquals(recordCode(() => pair().opener.open(sealRaw(KEY, 0, hex("02")))), "malformed");
    assertEquals(recordCode(() => pair().opener.open(sealRaw(KEY, 0, hex("0100")))), "malformed");
  });

  test("records change key every epoch, and each epoch's key is the documented one", () => {
    const epochRecords = 3;
    const sealer = new RecordSealer(KEY, "c2s", { aead, epochRecords });
    const opener = new RecordOpener(KEY, "c2s", { aead, epochRecords });
    const records = Array.from({ length: 8 }, (_, i) => sealer.seal(utf8(`record ${i}`)));
    for (const [i, record] of records.entries()) {
      // Independently: record i opens under the key of epoch floor(i / 3), and only that one.
      const epoch = Math.floor(i / epochRecords);
      const nonce = new Uint8Array(12);
      new DataView(nonce.buffer).setUint32(8, i);
      for (const tryEpoch of [epoch, epoch + 1]) {
        const opened = nodeAead(aead.suite).open(
          documentedRecordKey(KEY, aead.suite, tryEpoch),
          nonce,
          record.subarray(0, 4),
          record.slice(4, -16),
          record.subarray(record.length - 16),
        );
        assertEquals(opened?.subarray(1), tryEpoch === epoch ? utf8(`record ${i}`) : undefined);
      }
      assertEquals(opener.open(record.slice()), utf8(`record ${i}`)); // open() may decrypt in place
    }
    // An opener that keeps one key for longer fails at the first record of the second epoch.
    const stale = new RecordOpener(KEY, "c2s", { aead, epochRecords: 4 });
    for (const record of records.slice(0, 3)) stale.open(record);
    assertEquals(recordCode(() => stale.open(records[3]!)), "auth");
  });

  test("the suite is bound into the key: the other suite's opener refuses a record", () => {
    const other = nodeAead(SUITES.find((s) => s !== aead.suite)!);
    const record = new RecordSealer(KEY, "c2s", { aead }).seal(utf8("which suite"));
    assertEquals(
      recordCode(() => new RecordOpener(KEY, "c2s", { aead: other }).open(record)),
      "auth",
    );
  });

  test("RecordOpener.openInto() writes the payload into the caller's buffer and leaves the record alone", () => {
    const { sealer, opener } = pair();
    const out = new Uint8Array(80_000).fill(0xee);
    for (const payload of [utf8("hello"), new Uint8Array(0), new Uint8Array(70_000).fill(9)]) {
      const record = sealer.seal(payload);
      const copy = record.slice();
      assertEquals(opener.openInto(record, out), payload.length);
      assertEquals(out.subarray(0, payload.length), payload);
      assertEquals(record, copy);
    }
    assertEquals(out[70_000], 0xee); // nothing past the payload
    assertEquals(opener.openInto(sealer.sealClose(), out), null);
    assert(opener.closed);
    opener.finish();
  });

  test("RecordOpener.openInto() refuses a tampered record for good, and a buffer too small", () => {
    const { sealer, opener } = pair();
    const out = new Uint8Array(100);
    const record = sealer.seal(utf8("attack at dawn"));
    assertThrows(() => opener.openInto(record, new Uint8Array(13)), RangeError);
    // A caller's mistake does not use up the record: it still opens with room enough.
    assertEquals(opener.openInto(record, out), 14);
    const fresh = pair();
    const genuine = fresh.sealer.seal(utf8("attack at dawn"));
    const bad = genuine.slice();
    bad[6]! ^= 1;
    assertEquals(recordCode(() => fresh.opener.openInto(bad, out)), "auth");
    assertEquals(recordCode(() => fresh.opener.openInto(genuine, out)), "closed");
    // Inner types are checked after authentication, as with open().
    const raw = new RecordOpener(KEY, "c2s", { aead });
    assertEquals(recordCode(() => raw.openInto(sealRaw(KEY, 0, hex("0100")), out)), "malformed");
  });

  test("RecordSealer.sealInto() writes the same bytes as seal() into a reused buffer", () => {
    const key = new Uint8Array(32).fill(7);
    const whole = new RecordSealer(key, "c2s", { aead });
    const into = new RecordSealer(key, "c2s", { aead });
    const opener = new RecordOpener(key, "c2s", { aead });
    const out = new Uint8Array(recordLength(MAX_RECORD_PAYLOAD) + 10).fill(0xee);
    for (const size of [0, 1, 70_000, 1024 * 1024, 3]) {
      const payload = new Uint8Array(size).map((_, i) => i % 251);
      const a = whole.seal(payload);
      const n = into.sealInto(payload, out);
      assertEquals(n, recordLength(size));
      assertEquals(out.subarray(0, n), a);
      assertEquals(opener.open(out.subarray(0, n)), payload);
    }
    assertThrows(() => into.sealInto(utf8("too big for it"), new Uint8Array(20)), RangeError);
  });

  test("records sealed by one engine open with the other, both ways", () => {
    for (const other of ENGINES) {
      const there = { sealer: new RecordSealer(KEY, "c2s", { aead: other }) };
      const back = new RecordOpener(KEY, "c2s", { aead });
      const sealer = new RecordSealer(KEY, "s2c", { aead });
      const opener = new RecordOpener(KEY, "s2c", { aead: other });
      for (const size of [0, 5, 65_537, MAX_RECORD_PAYLOAD]) {
        const payload = crypto.getRandomValues(new Uint8Array(Math.min(size, 65536)));
        const full = new Uint8Array(size);
        for (let at = 0; at < size; at += payload.length) {
          full.set(payload.subarray(0, size - at), at);
        }
        assertEquals(back.open(there.sealer.seal(full)), full);
        assertEquals(opener.open(sealer.seal(full)), full);
      }
    }
  });
}

for (const suite of SUITES) {
  Deno.test(`the key changes at record ${EPOCH_RECORDS}, not before [${suite}]`, () => {
    const aead = defaultAead(suite);
    const sealer = new RecordSealer(KEY, "c2s", { aead });
    const opener = new RecordOpener(KEY, "c2s", { aead });
    const empty = new Uint8Array(0);
    let last: Uint8Array = new Uint8Array(0);
    for (let i = 0; i <= EPOCH_RECORDS; i++) {
      last = sealer.seal(empty);
      if (i < EPOCH_RECORDS) assertEquals(opener.open(last.slice()), empty);
    }
    // Record 65,536 is the first of epoch 1: it opens under that epoch's documented key only.
    const nonce = new Uint8Array(12);
    new DataView(nonce.buffer).setUint32(8, EPOCH_RECORDS);
    for (const epoch of [0, 1]) {
      const opened = nodeAead(suite).open(
        documentedRecordKey(KEY, suite, epoch),
        nonce,
        last.subarray(0, 4),
        last.slice(4, -16),
        last.subarray(last.length - 16),
      );
      assertEquals(opened === null, epoch === 0, `epoch ${epoch}`);
    }
    assertEquals(opener.open(last), empty);
  });
}
