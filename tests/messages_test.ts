import { assertEquals, assertThrows } from "@std/assert";
import {
  checkEntry,
  decodeAcks,
  decodeAnnounce,
  decodeHello,
  decodePlan,
  encodeJson,
} from "../src/protocol/messages.ts";
import { ProtocolError } from "../src/protocol/errors.ts";
import { MAX_BATCH_ENTRIES } from "../src/protocol/limits.ts";

const good = { id: 3, path: "a.txt", kind: "file", size: 5, mtime: 1_700_000_000_000, mode: 0o644 };

function code(fn: () => unknown): string {
  return (assertThrows(fn, ProtocolError) as ProtocolError).code;
}

Deno.test("checkEntry() accepts a well-formed file, directory and streamed entry", () => {
  assertEquals(checkEntry(good), { ok: true, entry: good });
  const dir = { id: 4, path: "d", kind: "dir", mtime: 0, mode: 0o755 };
  assertEquals(checkEntry(dir), { ok: true, entry: { ...dir, size: null } });
  assertEquals(checkEntry({ ...good, size: null }).ok, true);
});

Deno.test("checkEntry() refuses out-of-range sizes, times and modes for that entry only", () => {
  for (const size of [-1, 1.5, 2 ** 53, "12", 1e300, undefined, true]) {
    const check = checkEntry({ ...good, size });
    assertEquals(check.ok, false, `size ${size}`);
    if (!check.ok) assertEquals(check.id, 3);
  }
  for (const mtime of [NaN, "now", null, 1e20]) {
    assertEquals(checkEntry({ ...good, mtime }).ok, false, `mtime ${mtime}`);
  }
  for (const mode of [-1, 0o10000, 1.5, "644"]) {
    assertEquals(checkEntry({ ...good, mode }).ok, false, `mode ${mode}`);
  }
  assertEquals(checkEntry({ ...good, kind: "link" }).ok, false);
  assertEquals(checkEntry({ ...good, path: 42 }).ok, false);
  assertEquals(checkEntry({ ...good, kind: "dir", size: 4 }).ok, false);
});

Deno.test("checkEntry() treats an entry without a valid id as fatal", () => {
  for (
    const raw of [null, 7, "x", {}, { ...good, id: -1 }, { ...good, id: 2 ** 32 }, {
      ...good,
      id: 1.5,
    }]
  ) {
    assertEquals(code(() => checkEntry(raw)), "bad-message");
  }
});

Deno.test("decodeAnnounce() bounds the batch before looking at entries", () => {
  const entries = Array.from({ length: MAX_BATCH_ENTRIES + 1 }, (_, id) => ({ ...good, id }));
  assertEquals(code(() => decodeAnnounce(encodeJson({ batch: 0, entries }))), "too-many-entries");
  assertEquals(code(() => decodeAnnounce(encodeJson({ batch: 0, entries: [] }))), "bad-message");
  assertEquals(
    code(() => decodeAnnounce(encodeJson({ batch: -1, entries: [good] }))),
    "bad-message",
  );
  assertEquals(decodeAnnounce(encodeJson({ batch: 2, entries: [good] })).entries.length, 1);
});

Deno.test("decodeJson-based decoders reject non-JSON, non-objects and invalid UTF-8", () => {
  assertEquals(code(() => decodeHello(new TextEncoder().encode("not json"))), "bad-message");
  assertEquals(code(() => decodeHello(encodeJson([1, 2]))), "bad-message");
  assertEquals(code(() => decodeHello(new Uint8Array([0x7b, 0xff, 0x7d]))), "bad-message");
  assertEquals(
    code(() => decodeHello(encodeJson({ software: "x", digests: "sha256" }))),
    "bad-message",
  );
  assertEquals(decodeHello(encodeJson({ software: "x", digests: ["sha256"] })).digests, ["sha256"]);
});

Deno.test("decodePlan() and decodeAcks() check every decision and acknowledgement", () => {
  assertEquals(
    decodePlan(encodeJson({ batch: 0, decisions: [{ id: 1, action: "accept", offset: 0 }] }))
      .decisions,
    [{ id: 1, action: "accept", offset: 0, reason: undefined, prefix: undefined }],
  );
  assertEquals(
    code(() => decodePlan(encodeJson({ batch: 0, decisions: [{ id: 1, action: "maybe" }] }))),
    "bad-message",
  );
  assertEquals(
    code(() =>
      decodePlan(encodeJson({ batch: 0, decisions: [{ id: 1, action: "accept", offset: -4 }] }))
    ),
    "bad-message",
  );
  assertEquals(code(() => decodeAcks(encodeJson({ acks: [{ id: 1 }] }))), "bad-message");
  assertEquals(
    decodeAcks(encodeJson({ acks: [{ id: 1, ok: true, name: "a" }] })).acks[0].name,
    "a",
  );
});
