import { assertEquals, assertThrows } from "@std/assert";
import {
  checkEntry,
  decodeAcks,
  decodeAnnounce,
  decodeHello,
  decodePlan,
  decodeWelcome,
  encodeJson,
} from "../src/protocol/messages.ts";
import { ProtocolError } from "../src/protocol/errors.ts";
import {
  MAX_BATCH_ENTRIES,
  MAX_HOST_UNITS,
  MAX_PATH_BYTES,
  MAX_TEXT_BYTES,
} from "../src/protocol/limits.ts";

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
    [{
      id: 1,
      action: "accept",
      offset: 0,
      reason: undefined,
      prefix: undefined,
      unchanged: undefined,
    }],
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
    decodeAcks(encodeJson({ acks: [{ id: 1, ok: true, name: "a" }] })).acks[0]?.name,
    "a",
  );
});

const utf8 = (text: string) => new TextEncoder().encode(text);
const HELLO = { software: "x", digests: ["sha256"] };

Deno.test("decodeJson() refuses a byte order mark (PROTOCOL.md §5.1)", () => {
  const bom = Uint8Array.of(0xef, 0xbb, 0xbf);
  const hello = encodeJson(HELLO);
  assertEquals(code(() => decodeHello(Uint8Array.from([...bom, ...hello]))), "bad-message");
  // Inside a string a U+FEFF is just a character.
  assertEquals(decodeHello(encodeJson({ ...HELLO, software: "\ufeffx" })).software, "\ufeffx");
});

Deno.test("decodeJson() refuses an object that names a key twice, at any depth (§5.1)", () => {
  for (
    const text of [
      '{"software":"x","digests":["sha256"],"software":"y"}',
      '{"software":"x","digests":["sha256"],"digests":["sha256"]}',
      // The same key after unescaping.
      '{"software":"x","digests":["sha256"],"\\u0073oftware":"y"}',
      // Nested objects, and objects inside arrays.
      '{"software":"x","digests":["sha256"],"extra":{"a":1,"b":{"c":1},"a":2}}',
      '{"software":"x","digests":["sha256"],"extra":[{"k":1},{"k":1,"k":2}]}',
      // Past many keys, and a plain key then its escaped twin.
      `{"software":"x","digests":["sha256"],${
        Array.from({ length: 40 }, (_, i) => `"k${i}":1`).join(",")
      },"k39":2}`,
      '{"software":"x","digests":["sha256"],"ab":1,"a\u0062":2}',
      // After a nested object closes, its parent's keys still count.
      '{"software":"x","digests":["sha256"],"o":{"p":{"q":1},"q":2,"p":3}}',
    ]
  ) {
    assertEquals(code(() => decodeHello(utf8(text))), "bad-message", text);
  }
  // Not duplicates: the same key in different objects, keys that only look alike, a key's
  // text inside a string value, escaped quotes and backslashes in keys and values.
  for (
    const text of [
      '{"software":"x","digests":["sha256"],"extra":[{"k":1},{"k":2}],"k":3}',
      '{"software":"x","digests":["sha256"],"a":1,"A":2,"a ":3,"\\"a":4,"a\\\\":5}',
      '{"software":"\\"software\\":","digests":["sha256"],"x":"\\\\","y":{"x":"}"}}',
      `{"software":"x","digests":["sha256"],${
        Array.from({ length: 40 }, (_, i) => `"k${i}":{"k${i}":[{"k${i}":1}]}`).join(",")
      }}`,
      '{"software":"x","digests":["sha256"],"o":{"p":{"q":1},"q":2},"p":3,"q":4}',
    ]
  ) {
    assertEquals(decodeHello(utf8(text)).digests, ["sha256"], text);
  }
});

Deno.test("decoders take null for absent nowhere but in the fields whose type says so (§5.1)", () => {
  // Optional fields: absent is fine, null is ill-typed.
  assertEquals(decodeHello(encodeJson(HELLO)).features, []);
  assertEquals(code(() => decodeHello(encodeJson({ ...HELLO, features: null }))), "bad-message");
  assertEquals(code(() => decodeHello(encodeJson({ ...HELLO, transfer: null }))), "bad-message");
  const welcome = {
    software: "x",
    digest: "sha256",
    limits: { maxBatchEntries: 1, maxFrame: 4096, maxPathBytes: 1 },
  };
  assertEquals(decodeWelcome(encodeJson(welcome)).features, []);
  assertEquals(
    code(() => decodeWelcome(encodeJson({ ...welcome, features: null }))),
    "bad-message",
  );
  assertEquals(
    code(() => decodeAnnounce(encodeJson({ batch: 0, entries: [good], totals: null }))),
    "bad-message",
  );
  for (const field of ["reason", "offset", "prefix"]) {
    const decisions = [{ id: 1, action: "accept", [field]: null }];
    assertEquals(code(() => decodePlan(encodeJson({ batch: 0, decisions }))), "bad-message");
  }
  for (const field of ["name", "reason", "retry", "skipped"]) {
    const acks = [{ id: 1, ok: true, [field]: null }];
    assertEquals(code(() => decodeAcks(encodeJson({ acks }))), "bad-message", field);
  }
  // Where null is a value of the type: an unknown size, unknown total bytes.
  assertEquals(checkEntry({ ...good, size: null }).ok, true);
  assertEquals(
    checkEntry({ id: 4, path: "d", kind: "dir", size: null, mtime: 0, mode: 0 }).ok,
    true,
  );
  assertEquals(
    decodeAnnounce(encodeJson({ batch: 0, entries: [good], totals: { files: 1, bytes: null } }))
      .totals,
    { files: 1, bytes: null },
  );
});

Deno.test("checkEntry() requires path, kind, mtime and mode, and size on files (§5.4)", () => {
  for (const field of ["path", "kind", "size", "mtime", "mode"]) {
    const entry: Record<string, unknown> = { ...good };
    delete entry[field];
    assertEquals(checkEntry(entry).ok, false, field);
  }
  const dir = { id: 4, path: "d", kind: "dir", mtime: 0, mode: 0o755 };
  for (const field of ["path", "kind", "mtime", "mode"]) {
    const entry: Record<string, unknown> = { ...dir };
    delete entry[field];
    assertEquals(checkEntry(entry).ok, false, field);
  }
});

Deno.test("checkEntry() cuts a fractional mtime toward zero, to whole milliseconds (§5.4)", () => {
  const mtimeOf = (mtime: number) => {
    const check = checkEntry({ ...good, mtime });
    if (!check.ok) throw new Error(check.reason);
    return check.entry.mtime;
  };
  assertEquals(mtimeOf(1_700_000_000_123), 1_700_000_000_123);
  assertEquals(mtimeOf(1_700_000_000_123.999), 1_700_000_000_123);
  assertEquals(mtimeOf(-1_500.5), -1_500);
  assertEquals(Object.is(mtimeOf(-0.5), 0), true, "never -0");
  assertEquals(mtimeOf(8.64e15), 8.64e15);
  assertEquals(checkEntry({ ...good, mtime: 8.64e15 + 2 }).ok, false);
});

Deno.test("decodeWelcome() takes maxPathBytes from 1 to MAX_PATH_BYTES only (§5.3)", () => {
  const welcome = (maxPathBytes: unknown) =>
    encodeJson({
      software: "x",
      digest: "sha256",
      limits: { maxBatchEntries: 4096, maxFrame: 1 << 20, maxPathBytes },
    });
  assertEquals(decodeWelcome(welcome(1)).limits.maxPathBytes, 1);
  assertEquals(decodeWelcome(welcome(MAX_PATH_BYTES)).limits.maxPathBytes, MAX_PATH_BYTES);
  for (const bad of [0, MAX_PATH_BYTES + 1, 2 ** 32, -1, 1.5, null, "4096"]) {
    assertEquals(code(() => decodeWelcome(welcome(bad))), "bad-message", String(bad));
  }
});

Deno.test("sync fields: an entry's digest, a skip's unchanged, an Ack's replaced, each checked", () => {
  const hex = "ab".repeat(32);
  assertEquals(checkEntry({ ...good, digest: hex }), { ok: true, entry: { ...good, digest: hex } });
  for (const digest of ["AB", "abc", "", 7, null, "zz", "ab".repeat(65)]) {
    assertEquals(checkEntry({ ...good, digest }).ok, false, JSON.stringify(digest));
  }
  const folder = { id: 2, path: "d", kind: "dir", mtime: 0, mode: 0o755 };
  assertEquals(checkEntry({ ...folder, digest: hex }).ok, false, "a folder has no digest");
  const plan = (d: Record<string, unknown>) =>
    code(() => decodePlan(encodeJson({ batch: 0, decisions: [{ id: 1, ...d }] })));
  assertEquals(
    decodePlan(encodeJson({
      batch: 0,
      decisions: [{ id: 1, action: "skip", reason: "unchanged", unchanged: true }],
    })).decisions[0]?.unchanged,
    true,
  );
  assertEquals(plan({ action: "accept", unchanged: true }), "bad-message");
  assertEquals(plan({ action: "skip", unchanged: "yes" }), "bad-message");
  const acks = (a: Record<string, unknown>) =>
    code(() => decodeAcks(encodeJson({ acks: [{ id: 1, ...a }] })));
  assertEquals(
    decodeAcks(encodeJson({ acks: [{ id: 1, ok: true, name: "a", replaced: true }] })).acks[0]
      ?.replaced,
    true,
  );
  assertEquals(acks({ ok: false, reason: "x", replaced: true }), "bad-message");
  assertEquals(acks({ ok: true, name: "a", replaced: 1 }), "bad-message");
});

Deno.test("checkEntry() takes a text of 0 to MAX_TEXT_BYTES bytes, with no name, time or mode", () => {
  assertEquals(checkEntry({ id: 5, kind: "text", size: 12 }), {
    ok: true,
    entry: { id: 5, path: "", kind: "text", size: 12, mtime: 0, mode: 0 },
  });
  // Its path, time and mode are ignored, whatever they hold.
  const named = checkEntry({ id: 6, kind: "text", size: 0, path: "../x", mtime: "?", mode: -1 });
  assertEquals(named.ok && named.entry.path, "");
  assertEquals(checkEntry({ id: 7, kind: "text", size: MAX_TEXT_BYTES }).ok, true);
  for (const size of [MAX_TEXT_BYTES + 1, null, undefined, -1, 1.5, "12"]) {
    assertEquals(checkEntry({ id: 8, kind: "text", size }).ok, false, `size ${size}`);
  }
});

Deno.test("decodeHello() takes an optional host of at most MAX_HOST_UNITS units", () => {
  const hello = { software: "x", digests: ["sha256"] };
  assertEquals(decodeHello(encodeJson(hello)).host, undefined);
  const host = "\x1b[2J" + "h".repeat(MAX_HOST_UNITS - 4);
  assertEquals(decodeHello(encodeJson({ ...hello, host })).host, host);
  for (const bad of ["h".repeat(MAX_HOST_UNITS + 1), null, 42, ["a"]]) {
    assertEquals(code(() => decodeHello(encodeJson({ ...hello, host: bad }))), "bad-message");
  }
});
