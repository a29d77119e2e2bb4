/**
 * Listings (PROTOCOL.md §5.16): a sync asks what the receiver holds and
 * announces only the rest. The fingerprint against a known answer; the
 * receiver's answer (only files and folders, never through a link, only
 * under `update`, only before the first batch); a sender that distrusts
 * what answers it (a listing it did not ask for, a malformed one, an
 * incomplete one); and end to end, a sync whose bytes on the wire are the
 * changed files' and little more.
 */
import { assert, assertEquals, assertFalse, assertRejects, assertThrows } from "@std/assert";
import { join } from "node:path";
import { digestHex } from "../src/protocol/digests.ts";
import { opensslSha256Into } from "../src/transport/sha256_openssl.ts";
import { ProtocolError } from "../src/protocol/errors.ts";
import { FrameType } from "../src/protocol/frame.ts";
import {
  decodeList,
  decodeListing,
  encodeListing,
  fingerprint,
  Fingerprinter,
  FingerprintSet,
  LISTING_FRAME_FINGERPRINTS,
  LISTING_INCOMPLETE,
  LISTING_LAST,
  LISTING_MAX_FINGERPRINTS,
} from "../src/protocol/listing.ts";
import { ListingFilter } from "../src/client/listing_filter.ts";
import { ReplyReader } from "../src/client/reply_reader.ts";
import { SendErrors } from "../src/client/send_errors.ts";
import { Outcomes } from "../src/client/send_types.ts";
import { loadNativeReader } from "../src/native/native_read.ts";
import { Inbox } from "../src/server/inbox.ts";
import { sendListing } from "../src/server/listing_walk.ts";
import type { Frame, FrameWriter } from "../src/transport/frame_io.ts";
import { PROTOCOL_VERSION } from "../src/protocol/preamble.ts";
import { FaultProxy } from "./fault_proxy.ts";
import {
  randomBytes,
  RawClient,
  runCli,
  sha256,
  spawnServe,
  startServer,
  tempDir,
  writeTree,
} from "./_harness.ts";
import { parseNdjson, SEND_TYPES } from "./_ndjson.ts";
import { sendTo } from "./_scripted_receiver.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const SALT = Uint8Array.from({ length: 16 }, (_, i) => i);
const OLD = new Date("2024-03-01T12:00:00Z");

Deno.test("fingerprint() is the first 12 bytes of SHA-256 of the salt and the entry's line", () => {
  // The expected values are Python's hashlib.sha256(salt + line).hexdigest()[:24], as in
  // PROTOCOL.md Appendix A.5.
  const cases: [Parameters<typeof fingerprint>[2], string][] = [
    [
      { kind: "file", path: "photos/a.jpg", size: 48213, mtime: 1717171717000 },
      "3073b07f5a67a0c567847fba",
    ],
    [
      { kind: "dir", path: "photos", mtime: 1717171700000, mode: 0o755 },
      "5a98558d274a28907e4d3105",
    ],
    [{ kind: "file", path: "phötos/é.txt", size: 0, mtime: -1500.5 }, "ca98fafcdce5844c00beb6cf"],
  ];
  const prints = new Fingerprinter(sha256, SALT);
  for (const [entry, hex] of cases) {
    assertEquals(digestHex(fingerprint(sha256, SALT, entry)), hex, entry.path);
    assertEquals(digestHex(prints.of(entry)), hex, `${entry.path} (in place)`);
  }
});

Deno.test({
  name: "opensslSha256Into() hashes a buffer's first bytes, wherever the buffer starts",
  ignore: opensslSha256Into() === null,
  fn() {
    const into = opensslSha256Into()!;
    const data = randomBytes(300);
    const out = new Uint8Array(40).fill(0xaa);
    for (const [from, length] of [[0, 0], [0, 3], [1, 55], [7, 64], [13, 200], [0, 300]]) {
      const view = data.subarray(from!);
      into(view, length!, out);
      assertEquals(digestHex(out.subarray(0, 32)), digestHex(sha256(view.slice(0, length))));
      assertEquals(out[32], 0xaa, "only 32 bytes are written");
    }
    assertThrows(() => into(data.subarray(0, 10), 11, out), RangeError);
    // Through the Fingerprinter, Appendix A.5's values.
    const prints = new Fingerprinter(sha256, SALT, into);
    assertEquals(
      digestHex(prints.of({ kind: "dir", path: "photos", mtime: 1717171700000, mode: 0o755 })),
      "5a98558d274a28907e4d3105",
    );
  },
});

Deno.test("Fingerprinter writes in place what fingerprint() makes, whatever the numbers", () => {
  // The in-place writer puts numbers in decimal itself; String() is the reference.
  const numbers = [0, -0, 1, 9, 10, 99, 100, 4096, -1, -1500.5, 0.9, 1717171717999.9, 2 ** 53 - 1];
  const beyond = [2 ** 53, 2 ** 60, 1e21, -(2 ** 53)];
  const into = (data: Uint8Array, length: number, out: Uint8Array) =>
    out.set(sha256(data.slice(0, length)));
  for (const prints of [new Fingerprinter(sha256, SALT), new Fingerprinter(sha256, SALT, into)]) {
    const dest = new Uint8Array(40).fill(0xaa);
    for (const n of [...numbers, ...beyond]) {
      const entries: Parameters<typeof fingerprint>[2][] = [
        { kind: "file", path: "a/b.txt", size: Math.abs(Math.trunc(n)), mtime: n },
        { kind: "dir", path: "é/ü", mtime: n, mode: 0o40755 },
        { kind: "file", path: "x".repeat(5000), size: 1, mtime: n },
      ];
      for (const entry of entries) {
        const want = digestHex(fingerprint(sha256, SALT, entry));
        assertEquals(digestHex(prints.of(entry)), want, `${entry.kind} ${n}`);
        if (entry.kind === "file") prints.file(entry.path, entry.size, entry.mtime, dest, 20);
        else prints.dir(entry.path, entry.mtime, entry.mode, dest, 20);
        assertEquals(digestHex(dest.subarray(20, 32)), want, `${entry.kind} ${n} at 20`);
        assertEquals([dest[19], dest[32]], [0xaa, 0xaa], "only its 12 bytes are written");
      }
    }
  }
});

Deno.test("decodeList() and decodeListing() refuse what is out of bounds", () => {
  const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
  const salt = "00112233445566778899aabbccddeeff";
  assertEquals(decodeList(json({ salt, roots: ["a"] })), {
    salt: Uint8Array.from({ length: 16 }, (_, i) => 0x11 * (i % 16)),
    roots: ["a"],
  });
  for (
    const bad of [
      { salt: "00", roots: ["a"] },
      { salt: salt.toUpperCase(), roots: ["a"] },
      { salt, roots: [] },
      { salt, roots: [1] },
      { salt, roots: Array(4097).fill("a") },
    ]
  ) {
    assertThrows(() => decodeList(json(bad)), ProtocolError, undefined, JSON.stringify(bad));
  }
  assertEquals(
    decodeListing(encodeListing(LISTING_LAST, new Uint8Array(24))).fingerprints.length,
    24,
  );
  for (
    const bad of [
      new Uint8Array(0),
      new Uint8Array(9),
      Uint8Array.of(0x04),
      Uint8Array.of(LISTING_INCOMPLETE),
      Uint8Array.of(0), // neither last nor holding a fingerprint
      new Uint8Array(1 + 12 * 65537),
    ]
  ) {
    assertThrows(() => decodeListing(bad), ProtocolError, "LISTING");
  }
});

Deno.test("FingerprintSet holds what was added, grows, and stops at its bound", () => {
  const set = new FingerprintSet();
  const bytes = randomBytes(12 * 50_000);
  assert(set.addAll(bytes));
  for (let at = 0; at < bytes.length; at += 12) assert(set.has(bytes.subarray(at, at + 12)));
  assertFalse(set.has(new Uint8Array(12).fill(0xab)));
  assertEquals(set.size, 50_000);
  // Frames one after another, as a LISTING's payload holds them (one byte in), duplicates once.
  const framed = new FingerprintSet();
  for (const part of [bytes.subarray(0, 12 * 1000), bytes.subarray(12 * 500, 12 * 30_000)]) {
    const payload = new Uint8Array(1 + part.length);
    payload.set(part, 1);
    assert(framed.addAll(payload.subarray(1)));
  }
  assertEquals(framed.size, 30_000);
  for (let at = 0; at < 12 * 30_000; at += 12) assert(framed.has(bytes, at));
  assertFalse(framed.has(bytes, 12 * 30_000));
  const big = new FingerprintSet();
  const many = new Uint8Array(12 * (LISTING_MAX_FINGERPRINTS + 1));
  const view = new DataView(many.buffer);
  for (let i = 0; i <= LISTING_MAX_FINGERPRINTS; i++) view.setUint32(12 * i + 8, i);
  assertFalse(big.addAll(many), "one more than the bound");
});

Deno.test("FingerprintSet stays fast with values a receiver chose to share their low bits", () => {
  // Unkeyed, 2^18 values alike in every bit a slot is taken from would each probe past all the
  // others (about 3 * 10^10 probes); keyed, each is placed at once.
  const set = new FingerprintSet();
  const count = 1 << 18;
  const bytes = new Uint8Array(12 * count);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < count; i++) view.setUint32(12 * i, i << 13);
  const started = performance.now();
  assert(set.addAll(bytes));
  for (let i = 0; i < count; i += 97) assert(set.has(bytes.subarray(12 * i, 12 * i + 12)));
  // A generous bound (a correct set takes tens of ms): it catches the quadratic case only.
  assert(performance.now() - started < 10_000, "adding and looking up stay linear");
});

/** The fingerprints a LIST of `roots` gets from the server on `port`, and the frames' flags. */
async function listFrom(client: RawClient, roots: string[]) {
  await client.json(FrameType.LIST, { salt: digestHex(SALT), roots });
  const got = new Set<string>();
  const flags: number[] = [];
  for (;;) {
    const frame = await client.next();
    assertEquals(frame?.type, FrameType.LISTING);
    const listing = decodeListing(frame!.payload);
    flags.push(listing.flags);
    for (let at = 0; at < listing.fingerprints.length; at += 12) {
      got.add(digestHex(listing.fingerprints.subarray(at, at + 12)));
    }
    if (listing.flags & LISTING_LAST) return { got, flags };
  }
}

Deno.test("the receiver lists its files and folders under the roots, never a link or what is behind it", async () => {
  await using tmp = await tempDir("ferry-list-");
  const dir = join(tmp.path, "inbox");
  const outside = join(tmp.path, "outside");
  await Deno.mkdir(join(dir, "photos", "sub"), { recursive: true });
  await Deno.mkdir(outside);
  await Deno.writeTextFile(join(outside, "secret.txt"), "not yours");
  await Deno.writeTextFile(join(dir, "photos", "a.jpg"), "jpeg");
  await Deno.writeTextFile(join(dir, "photos", "sub", "b.txt"), "bee");
  await Deno.writeTextFile(join(dir, "other.txt"), "not asked for");
  await Deno.symlink(outside, join(dir, "photos", "link-to-folder"));
  await Deno.symlink(join(outside, "secret.txt"), join(dir, "photos", "link-to-file"));
  await Deno.utime(join(dir, "photos", "a.jpg"), OLD, OLD);
  await Deno.utime(join(dir, "photos", "sub", "b.txt"), OLD, OLD);
  const server = await startServer(dir, { onConflict: "update" });
  const client = await RawClient.connect(server.port);
  try {
    const welcome = await client.handshake(PROTOCOL_VERSION, { features: ["sync", "listing"] });
    assertEquals(welcome?.type, FrameType.WELCOME);
    // "../outside" and ".ferry" are no top-level names; "missing" is not there.
    const { got, flags } = await listFrom(client, ["photos", "../outside", ".ferry", "missing"]);
    assertEquals(flags, [LISTING_LAST]);
    const expected = new Set<string>();
    const add = (e: Parameters<typeof fingerprint>[2]) =>
      expected.add(digestHex(fingerprint(sha256, SALT, e)));
    for (const rel of ["photos", "photos/sub"]) {
      const info = await Deno.lstat(join(dir, rel));
      add({ kind: "dir", path: rel, mtime: info.mtime!.getTime(), mode: info.mode! & 0o7777 });
    }
    add({ kind: "file", path: "photos/a.jpg", size: 4, mtime: OLD.getTime() });
    add({ kind: "file", path: "photos/sub/b.txt", size: 3, mtime: OLD.getTime() });
    assertEquals(got, expected);
    // The listing tells nothing of the links' targets.
    const secret = await Deno.lstat(join(outside, "secret.txt"));
    for (const path of ["photos/link-to-folder/secret.txt", "photos/link-to-file"]) {
      const fp = fingerprint(sha256, SALT, {
        kind: "file",
        path,
        size: secret.size,
        mtime: secret.mtime!.getTime(),
      });
      assertFalse(got.has(digestHex(fp)), path);
    }
    // A second LIST, or a LIST after a batch, is out of sequence.
    await client.json(FrameType.LIST, { salt: digestHex(SALT), roots: ["photos"] });
    const error = await client.next();
    assertEquals(error?.type, FrameType.ERROR);
    assertEquals(JSON.parse(new TextDecoder().decode(error!.payload)).code, "bad-sequence");
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("a receiver that is not syncing, or a session that did not agree on it, takes no LIST", async () => {
  await using tmp = await tempDir("ferry-list-");
  const cases = [
    { policy: "rename" as const, features: ["sync", "listing"], offered: false },
    { policy: "update" as const, features: ["sync"], offered: true },
  ];
  for (const { policy, features, offered } of cases) {
    const server = await startServer(join(tmp.path, policy + features.length), {
      onConflict: policy,
    });
    const client = await RawClient.connect(server.port);
    try {
      const welcome = await client.handshake(PROTOCOL_VERSION, { features });
      const named = JSON.parse(new TextDecoder().decode(welcome!.payload)).features;
      assertEquals(named.includes("listing"), offered, policy);
      await client.json(FrameType.LIST, { salt: digestHex(SALT), roots: ["a"] });
      const error = await client.next();
      assertEquals(error?.type, FrameType.ERROR);
      assertEquals(
        JSON.parse(new TextDecoder().decode(error!.payload)).code,
        "unexpected-frame",
        policy,
      );
    } finally {
      client.close();
      await server.close();
    }
  }
});

Deno.test("LIST after the first batch, and LISTED without a listing, are out of sequence", async () => {
  await using tmp = await tempDir("ferry-list-");
  const server = await startServer(join(tmp.path, "inbox"), { onConflict: "update" });
  try {
    for (const first of ["announce", "listed"] as const) {
      const client = await RawClient.connect(server.port);
      try {
        await client.handshake(PROTOCOL_VERSION, { features: ["sync", "listing"] });
        if (first === "announce") {
          await client.json(FrameType.ANNOUNCE, {
            batch: 0,
            entries: [{ id: 0, path: "d", kind: "dir", size: null, mtime: 0, mode: 0o755 }],
          });
          assertEquals((await client.next())?.type, FrameType.PLAN);
          await client.json(FrameType.LIST, { salt: digestHex(SALT), roots: ["d"] });
        } else {
          await client.json(FrameType.LISTED, { files: 1, bytes: 1 });
        }
        const error = await client.next();
        assertEquals(error?.type, FrameType.ERROR, first);
        assertEquals(JSON.parse(new TextDecoder().decode(error!.payload)).code, "bad-sequence");
      } finally {
        client.close();
      }
    }
  } finally {
    await server.close();
  }
});

Deno.test("send refuses a listing it did not ask for, and a malformed one", async () => {
  await using tmp = await tempDir("ferry-list-");
  const src = join(tmp.path, "src");
  await writeTree(src, { "a.txt": "hello" });
  const cases = [
    // WELCOME without "listing": no LIST is sent, so a LISTING is not expected.
    { features: ["resume", "sync"], listing: [encodeListing(LISTING_LAST, new Uint8Array(12))] },
    // A LISTING whose length is not 1 + 8k.
    { features: ["resume", "sync", "listing"], listing: [new Uint8Array(5)] },
  ];
  for (const { features, listing } of cases) {
    const result = await sendTo(
      {
        features,
        decide: () => ({ action: "accept", offset: 0 }),
        list: () => listing,
        unasked: !features.includes("listing") ? listing : undefined,
      },
      [src, "--json"],
    );
    assertEquals(result.code, 1, `${features}: ${result.stdout}${result.stderr}`);
    const last = parseNdjson(result.stdout, SEND_TYPES).at(-1)!;
    assertEquals([last.type, last.code], ["error", "protocol"], result.stdout);
    assertFalse(result.stdout.includes('"type":"file-done"'));
  }
});

Deno.test("send announces everything after an incomplete listing, and leaves out only what was listed", async () => {
  await using tmp = await tempDir("ferry-list-");
  const src = join(tmp.path, "src");
  await Deno.mkdir(src);
  for (const name of ["a.txt", "b.txt", "c.txt"]) {
    await Deno.writeTextFile(join(src, name), name);
    await Deno.utime(join(src, name), OLD, OLD);
  }
  const listed = (salt: string, path: string) =>
    fingerprint(
      sha256,
      Uint8Array.from(salt.match(/../g)!.map((h) => parseInt(h, 16))),
      { kind: "file", path, size: 5, mtime: OLD.getTime() },
    );
  const features = ["resume", "sync", "listing"];
  const decide = () => ({ action: "accept", offset: 0 });
  // Whole: b.txt is the receiver's already; a.txt, c.txt and the folder go.
  const whole = await sendTo({
    features,
    decide,
    list: ({ salt }) => [encodeListing(LISTING_LAST, listed(salt, "src/b.txt"))],
  }, [src, "--json"]);
  assertEquals(whole.code, 0, whole.stderr + whole.stdout);
  assertEquals(whole.announced.sort(), ["src", "src/a.txt", "src/c.txt"]);
  const unchanged = parseNdjson(whole.stdout, SEND_TYPES).filter((o) => o.type === "unchanged");
  assertEquals(unchanged.map((o) => o.path), ["src/b.txt"]);
  assert(whole.frames.includes(FrameType.LISTED));
  // Incomplete: nothing is left out.
  const partial = await sendTo({
    features,
    decide,
    list: ({ salt }) => [
      encodeListing(0, listed(salt, "src/a.txt")),
      encodeListing(LISTING_LAST | LISTING_INCOMPLETE, listed(salt, "src/b.txt")),
    ],
  }, [src, "--json"]);
  assertEquals(partial.code, 0, "partial: " + partial.stderr + partial.stdout);
  assertEquals(partial.announced.sort(), ["src", "src/a.txt", "src/b.txt", "src/c.txt"]);
});

Deno.test("a sync of a changed file sends about that file's bytes; an unchanged one little more than the folders", async () => {
  await using tmp = await tempDir("ferry-list-");
  const src = join(tmp.path, "src");
  const file = new Uint8Array(64 * 1024);
  for (let d = 0; d < 4; d++) {
    await Deno.mkdir(join(src, `d${d}`), { recursive: true });
    for (let f = 0; f < 50; f++) {
      crypto.getRandomValues(file);
      await Deno.writeFile(join(src, `d${d}`, `f${f}.bin`), file);
    }
  }
  const serve = await spawnServe(join(tmp.path, "inbox"), [
    "--on-conflict",
    "update",
    "--no-discovery",
  ]);
  const proxy = new FaultProxy(serve.port, {});
  try {
    const sync = async () => {
      const before = proxy.forwarded;
      const result = await runCli(["send", src, "--to", `127.0.0.1:${proxy.port}`, "--json"]);
      assertEquals(result.code, 0, result.stderr);
      return {
        bytes: proxy.forwarded - before,
        summary: parseNdjson(result.stdout, SEND_TYPES).at(-1)!,
      };
    };
    await sync();
    crypto.getRandomValues(file);
    await Deno.writeFile(join(src, "d2", "f7.bin"), file);
    const changed = await sync();
    assertEquals([changed.summary.files, changed.summary.unchanged], [1, 199]);
    // The changed file, and for the rest only the listing's request and the folders' entries.
    assert(changed.bytes < file.length + 4096, `${changed.bytes} bytes for ${file.length} changed`);
    const same = await sync();
    assertEquals([same.summary.files, same.summary.unchanged], [0, 200]);
    assert(same.bytes < 4096, `${same.bytes} bytes for an unchanged tree`);
  } finally {
    await proxy.close();
    await serve.stop();
  }
});

Deno.test("serve --ask offers no listing: nothing is told before the person decides", async () => {
  await using tmp = await tempDir("ferry-list-");
  const serve = await spawnServe(
    join(tmp.path, "inbox"),
    ["--ask", "--json", "--on-conflict", "update", "--no-discovery"],
    { stdin: "piped", ready: (out) => out.includes('"type":"start"') },
  );
  const client = await RawClient.connect(serve.port);
  try {
    const welcome = await client.handshake(PROTOCOL_VERSION, { features: ["sync", "listing"] });
    const features = JSON.parse(new TextDecoder().decode(welcome!.payload)).features;
    assertEquals(features.includes("sync"), true);
    assertEquals(features.includes("listing"), false);
  } finally {
    client.close();
    await serve.child.stdin.close().catch(() => {});
    await serve.stop();
  }
});

Deno.test("send --checksum asks for no listing: it compares content, not size and time", async () => {
  await using tmp = await tempDir("ferry-list-");
  const src = join(tmp.path, "src");
  await writeTree(src, { "a.txt": "hello" });
  const result = await sendTo({
    features: ["resume", "sync", "listing"],
    decide: () => ({ action: "accept", offset: 0 }),
    list: () => {
      throw new Error("no LIST expected");
    },
  }, [src, "--checksum", "--json"]);
  assertEquals(result.code, 0, result.stderr);
  assertFalse(result.frames.includes(FrameType.LIST));
  assertEquals(result.announced.sort(), ["src", "src/a.txt"]);
});

Deno.test("a listed folder is announced when something beneath it is, and left out when nothing is", async () => {
  await using tmp = await tempDir("ferry-list-");
  const src = join(tmp.path, "src");
  await Deno.mkdir(src);
  for (const name of ["a.txt", "b.txt"]) {
    await Deno.writeTextFile(join(src, name), name);
    await Deno.utime(join(src, name), OLD, OLD);
  }
  const folder = await Deno.lstat(src);
  const prints = (salt: string, files: string[]) => {
    const bytes = Uint8Array.from(salt.match(/../g)!.map((h) => parseInt(h, 16)));
    const all = [
      fingerprint(sha256, bytes, {
        kind: "dir",
        path: "src",
        mtime: folder.mtime!.getTime(),
        mode: folder.mode! & 0o7777,
      }),
      ...files.map((f) =>
        fingerprint(sha256, bytes, { kind: "file", path: f, size: 5, mtime: OLD.getTime() })
      ),
    ];
    const out = new Uint8Array(12 * all.length);
    all.forEach((fp, i) => out.set(fp, 12 * i));
    return [encodeListing(LISTING_LAST, out)];
  };
  const features = ["resume", "sync", "listing"];
  const decide = () => ({ action: "accept", offset: 0 });
  const some = await sendTo(
    { features, decide, list: ({ salt }) => prints(salt, ["src/b.txt"]) },
    [src, "--json"],
  );
  assertEquals(some.code, 0, some.stderr);
  assertEquals(some.announced.sort(), ["src", "src/a.txt"]);
  const none = await sendTo(
    { features, decide, list: ({ salt }) => prints(salt, ["src/a.txt", "src/b.txt"]) },
    [src, "--json"],
  );
  assertEquals(none.code, 0, none.stderr);
  assertEquals(none.announced, []);
  const summary = parseNdjson(none.stdout, SEND_TYPES).at(-1)!;
  assertEquals([summary.files, summary.unchanged, summary.ok], [0, 2, true]);
});

/** A ReplyReader over `frames`, after a LIST was sent: how its reading ended. */
async function readListing(frames: Frame[]): Promise<unknown> {
  let at = 0;
  const replies = new ReplyReader(
    { next: () => Promise.resolve(frames[at++] ?? null) },
    new SendErrors("test", 60_000, 1),
    {
      acknowledged: () => {},
      explain: (err) => Promise.resolve(err),
      close: () => {},
    },
  );
  const listing = replies.expectListing();
  replies.start();
  await replies.reading;
  await listing.catch(() => {});
  return replies.failure;
}

Deno.test("ReplyReader refuses a LISTING after the last, a PLAN inside a listing, and too many fingerprints", async () => {
  const last = {
    type: FrameType.LISTING,
    payload: encodeListing(LISTING_LAST, new Uint8Array(12)),
  };
  const plan = {
    type: FrameType.PLAN,
    payload: new TextEncoder().encode(JSON.stringify({ batch: 0, decisions: [] })),
  };
  const full = {
    type: FrameType.LISTING,
    payload: encodeListing(0, randomBytes(12 * LISTING_FRAME_FINGERPRINTS)),
  };
  const cases: [string, Frame[], string][] = [
    ["a LISTING after the last", [last, last], "unexpected-frame"],
    ["a PLAN inside the listing", [plan], "unexpected-frame"],
    ["more fingerprints than the bound", Array(17).fill(full), "bad-frame"],
  ];
  for (const [what, frames, code] of cases) {
    const failure = await readListing(frames);
    assert(failure instanceof ProtocolError, `${what}: ${failure}`);
    assertEquals((failure as ProtocolError).code, code, what);
  }
});

/** `count` files t/f0, t/f1, ... of one byte each, as a walk gives them. */
function fileEntries(count: number) {
  return Array.from({ length: count }, (_, i) => ({
    path: `t/f${i}`,
    source: `/t/f${i}`,
    kind: "file" as const,
    size: 1,
    mtime: 1000,
    mode: 0o644,
  }));
}

/** A walk handing out `entries` in order, and how many it has handed out. */
function walkOf(entries: ReturnType<typeof fileEntries>) {
  const walked = { count: 0 };
  const walk = {
    pull: () =>
      walked.count < entries.length
        ? { type: "entry" as const, entry: entries[walked.count++]! }
        : null,
    next: () => Promise.resolve({ done: true as const, value: undefined }),
  };
  return { walk, walked };
}

Deno.test("ListingFilter hands on every entry the listing lacks, in the walk's order, whenever the listing comes", async () => {
  const entries = fileEntries(20_000);
  const salt = new Uint8Array(16);
  const listed = new FingerprintSet();
  const prints = new Fingerprinter(sha256, salt);
  for (let i = 0; i < entries.length; i += 3) listed.addAll(prints.of(entries[i]!));
  const { walk } = walkOf(entries);
  const counted: number[] = [];
  const filter = new ListingFilter(
    walk,
    new Promise((resolve) => setTimeout(() => resolve(listed), 100)),
    salt,
    sha256,
    new Outcomes(() => {}),
    (size) => counted.push(size),
  );
  const got: string[] = [];
  for (let item = await filter.pull(); item !== null; item = await filter.pull()) {
    if (item.type === "entry") got.push(item.entry.path);
  }
  assertEquals(got, entries.filter((_, i) => i % 3 !== 0).map((e) => e.path));
  assertEquals(counted.length, Math.ceil(entries.length / 3));
  assertEquals(filter.unchanged, { files: counted.length, bytes: counted.length });
});

Deno.test("ListingFilter uses a listing that came at once early, and walks ahead boundedly while one does not", async () => {
  const entries = fileEntries(40_000);
  const salt = new Uint8Array(16);
  const start = (listing: Promise<FingerprintSet | null>) => {
    const { walk, walked } = walkOf(entries);
    const filter = new ListingFilter(walk, listing, salt, sha256, new Outcomes(() => {}));
    return { filter, walked };
  };
  // A receiver that holds nothing there answers at once: the transfer starts after a short walk.
  const early = start(Promise.resolve(new FingerprintSet()));
  assertEquals((await early.filter.pull())?.type, "entry");
  assert(early.walked.count <= 1024, `walked ${early.walked.count} entries first`);
  // One that takes its time: the walk goes on ahead, but no further than its bound.
  let answer = (_: FingerprintSet) => {};
  const late = start(new Promise((resolve) => answer = resolve));
  const first = late.filter.pull();
  await new Promise((resolve) => setTimeout(resolve, 400));
  assert(late.walked.count > 1024 && late.walked.count <= 16_384, `walked ${late.walked.count}`);
  answer(new FingerprintSet());
  assertEquals((await first)?.type, "entry");
});

Deno.test({
  name: "sendListing() stops at its bound (incomplete), skips links and names that are not UTF-8",
  ignore: Deno.build.os !== "linux",
  async fn() {
    await using tmp = await tempDir("ferry-list-");
    const dir = join(tmp.path, "inbox");
    await Deno.mkdir(join(dir, "photos"), { recursive: true });
    for (const name of ["a", "b", "c", "d"]) {
      await Deno.writeTextFile(join(dir, "photos", name), name);
    }
    await Deno.symlink(join(dir, "photos"), join(dir, "linked"));
    const made = await new Deno.Command("bash", {
      args: ["-c", 'touch "$1/$(printf "\\377")"', "_", join(dir, "photos")],
    }).output();
    assertEquals(made.code, 0);
    const native = loadNativeReader()!;
    assert(native !== null && native.lists);
    const inbox = await Inbox.open(dir);
    const frames: Uint8Array[] = [];
    const writer = {
      frame: (_type: number, payload: Uint8Array) => {
        frames.push(payload.slice());
        return Promise.resolve();
      },
      flush: () => Promise.resolve(),
    } as unknown as FrameWriter;
    const run = (roots: string[], maxFingerprints?: number) =>
      sendListing({ salt: SALT, roots }, {
        inbox,
        writer,
        native,
        sha256,
        limits: { maxPathBytes: 4096, maxDepth: 128 },
        stopIfClosed: () => {},
        ...(maxFingerprints === undefined ? {} : { maxFingerprints }),
      });
    // The folder and its four files with UTF-8 names; the link at the top is not listed.
    const whole = await run(["photos", "linked"]);
    assertEquals([whole.entries, whole.files, whole.bytes], [5, 4, 4]);
    assertEquals(decodeListing(frames.at(-1)!).flags, LISTING_LAST);
    frames.length = 0;
    const cut = await run(["photos"], 3);
    assertEquals(cut.entries, 3);
    const lastFrame = decodeListing(frames.at(-1)!);
    assertEquals(lastFrame.flags, LISTING_LAST | LISTING_INCOMPLETE);
  },
});

Deno.test({
  name: "sendListing() kept for the next listing gives that listing's salt, after one that failed",
  ignore: Deno.build.os !== "linux",
  async fn() {
    await using tmp = await tempDir("ferry-list-");
    const dir = join(tmp.path, "inbox");
    await Deno.mkdir(join(dir, "photos", "sub"), { recursive: true });
    for (const name of ["a", "b", "c", "sub/d"]) {
      await Deno.writeTextFile(join(dir, "photos", name), name.at(-1)!);
    }
    const native = loadNativeReader()!;
    const inbox = await Inbox.open(dir);
    // What the receiver holds, fingerprinted with `salt` as §5.16 says.
    const expected = async (salt: Uint8Array) => {
      const hex = new Set<string>();
      for (
        const rel of ["photos", "photos/sub", "photos/a", "photos/b", "photos/c", "photos/sub/d"]
      ) {
        const info = await Deno.lstat(join(dir, rel));
        const mtime = info.mtime!.getTime();
        const print = info.isDirectory
          ? fingerprint(sha256, salt, { kind: "dir", path: rel, mtime, mode: info.mode! })
          : fingerprint(sha256, salt, { kind: "file", path: rel, size: info.size, mtime });
        hex.add(digestHex(print));
      }
      return hex;
    };
    const listed = (frames: Uint8Array[]) => {
      const hex = new Set<string>();
      for (const frame of frames) {
        const { fingerprints } = decodeListing(frame);
        for (let at = 0; at < fingerprints.length; at += 12) {
          hex.add(digestHex(fingerprints.subarray(at, at + 12)));
        }
      }
      return hex;
    };
    // The lowest free descriptor: it moves up when a listing leaves a folder open.
    const openFolders = () => {
      const fd = native.openFolder(dir);
      native.close(fd);
      return fd;
    };
    /** A listing of "photos" with `salt`, each frame given to `frame`. */
    const listWith = (
      salt: Uint8Array,
      frame: (payload: Uint8Array) => Promise<void>,
      maxFingerprints?: number,
    ) =>
      sendListing({ salt, roots: ["photos"] }, {
        inbox,
        writer: {
          frame: (_type: number, payload: Uint8Array) => frame(payload),
          flush: () => Promise.resolve(),
        } as unknown as FrameWriter,
        native,
        sha256,
        sha256Into: opensslSha256Into(),
        limits: { maxPathBytes: 4096, maxDepth: 128 },
        stopIfClosed: () => {},
        ...(maxFingerprints === undefined ? {} : { maxFingerprints }),
      });
    const run = (salt: Uint8Array, frames: Uint8Array[] | null, maxFingerprints?: number) =>
      listWith(salt, (payload) => {
        if (frames === null) return Promise.reject(new Error("the session is gone"));
        frames.push(payload.slice());
        return Promise.resolve();
      }, maxFingerprints);
    const before = openFolders();
    const first: Uint8Array[] = [];
    await run(SALT, first);
    assertEquals(listed(first), await expected(SALT));
    // Stopped by its bound with folders open, then its last frame cannot be sent.
    await assertRejects(() => run(SALT, null, 3), Error, "the session is gone");
    assertEquals(openFolders(), before);
    const other = SALT.map((b) => b ^ 0xa5);
    const next: Uint8Array[] = [];
    const counts = await run(other, next);
    assertEquals([counts.entries, counts.files, counts.bytes], [6, 4, 4]);
    assertEquals(listed(next), await expected(other));
    assertEquals(openFolders(), before);
    // Two sessions listing at once: each its own walk and salt, whatever the kept one holds.
    let release = () => {};
    const gate = new Promise<void>((r) => release = r);
    const gated = (salt: Uint8Array, frames: Uint8Array[]) =>
      listWith(salt, async (payload) => {
        frames.push(payload.slice());
        await gate;
      });
    const third = SALT.map((b) => b ^ 0x3c);
    const framesA: Uint8Array[] = [];
    const framesB: Uint8Array[] = [];
    const both = Promise.all([gated(other, framesA), gated(third, framesB)]);
    await sleep(10);
    release();
    await both;
    assertEquals(listed(framesA), await expected(other));
    assertEquals(listed(framesB), await expected(third));
    assertEquals(openFolders(), before);
  },
});

Deno.test("LISTED counts no more files and bytes than were listed", async () => {
  await using tmp = await tempDir("ferry-list-");
  const dir = join(tmp.path, "inbox");
  await Deno.mkdir(join(dir, "photos"), { recursive: true });
  await Deno.writeTextFile(join(dir, "photos", "a.jpg"), "jpeg");
  const server = await startServer(dir, { onConflict: "update" });
  const client = await RawClient.connect(server.port);
  try {
    await client.handshake(PROTOCOL_VERSION, { features: ["sync", "listing"] });
    await listFrom(client, ["photos"]);
    await client.json(FrameType.LISTED, { files: 1_000_000, bytes: 2 ** 50 });
    await client.send(FrameType.DONE, new Uint8Array(0));
    assertEquals((await client.next())?.type, FrameType.BYE);
    const counted = server.events.find((e) => e.type === "unchanged-listed");
    assertEquals(counted, { type: "unchanged-listed", session: 1, files: 1, bytes: 4 });
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("a receiver that never answers LIST is given up after the usual idle deadline", async () => {
  await using tmp = await tempDir("ferry-list-");
  const src = join(tmp.path, "src");
  await writeTree(src, { "a.txt": "hello" });
  const started = performance.now();
  const result = await sendTo({
    features: ["resume", "sync", "listing"],
    decide: () => ({ action: "accept", offset: 0 }),
    list: () => [], // it reads LIST and says nothing
  }, [src, "--json", "--timeout", "2"]);
  const seconds = (performance.now() - started) / 1000;
  assertEquals(result.code, 1, result.stdout);
  const last = parseNdjson(result.stdout, SEND_TYPES).at(-1)!;
  assertEquals(last.code, "timeout", result.stdout);
  // Not the first PLAN's allowance for a person deciding (300 s more): nobody is asked to list.
  assert(seconds < 60, `gave up after ${seconds} s`);
  assertFalse(result.stdout.includes("to accept"), "no note about a person deciding");
});
