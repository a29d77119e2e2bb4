/**
 * Seeded fuzzing of the receiver.
 *
 * One server (accepting the plain channel too) runs for the whole test.
 * Each iteration sends it one byte stream over a fresh TCP connection, all
 * at once, then half-closes: pure random bytes, random frames after a valid
 * handshake, a valid plain-channel session stream as is, a valid stream
 * mutated 1..4 times (bit flips, overwrites, inserts, deletions,
 * duplications, truncation, splices, lying frame lengths, dropped,
 * duplicated or swapped frames, hostile names and values in the JSON), or
 * an opening of the secure channel with made-up key material. Afterwards,
 * whatever happened to the streams:
 *
 * - nothing under BASE changed outside DIR (BASE/inbox);
 * - every name in DIR stays inside it, is not ferry's staging folder, and
 *   nothing there is a symbolic link (except the one planted by the test,
 *   unchanged);
 * - every stored file has the content of a file some valid stream carried,
 *   and is exactly what the server reported storing;
 * - DIR/.ferry/tmp is empty once the sessions have ended;
 * - no session ended with an internal error, and none failed unexpectedly;
 * - the server still serves a good client.
 *
 * Reproduce a run with FERRY_FUZZ_SEED (the seed is printed); make it longer
 * with FERRY_FUZZ_ITERATIONS and FERRY_FUZZ_SECONDS (a wall-clock budget
 * after which it stops early). FERRY_FUZZ_STATS=1 prints how the sessions
 * ended, to see which parts of the receiver the streams reach.
 */
import { senderAd } from "../src/transport/channel.ts";
import { assert, assertEquals } from "@std/assert";
import { concat as concatBytes } from "@std/bytes";
import { join } from "node:path";
import { send, type SendEvent } from "../src/client/send_session.ts";
import { resolveSources } from "../src/client/walk.ts";
import { ProtocolError } from "../src/protocol/errors.ts";
import {
  decodeFileAbort,
  decodeFileEnd,
  decodeFileStart,
  encodeFileAbort,
  encodeFileEnd,
  encodeFileStart,
  encodeFrame,
  FrameType,
  type FrameTypeCode,
  parseHeader,
} from "../src/protocol/frame.ts";
import { MAX_FRAME_PAYLOAD } from "../src/protocol/limits.ts";
import {
  checkEntry,
  decodeAcks,
  decodeAnnounce,
  decodeBye,
  decodeError,
  decodeHello,
  decodePlan,
  decodeWelcome,
  encodeJson,
} from "../src/protocol/messages.ts";
import {
  Channel,
  decodePreamble,
  encodePreamble,
  PROTOCOL_VERSION,
} from "../src/protocol/preamble.ts";
import type { ServerEvent } from "../src/server/session.ts";
import { sha256, snapshot, startServer, tempDir, type TestServer, waitFor } from "./_harness.ts";
import { Rng } from "./_random.ts";

// ---------------------------------------------------------------------------
// Settings and the seeded random source
// ---------------------------------------------------------------------------

function envNumber(name: string, fallback: number): number {
  const raw = Deno.env.get(name);
  if (raw === undefined || raw.trim() === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a number, not ${raw}`);
  return value;
}

const SEED = envNumber("FERRY_FUZZ_SEED", 0x5eed) >>> 0;
const ITERATIONS = Math.floor(envNumber("FERRY_FUZZ_ITERATIONS", 500));
const SECONDS = envNumber("FERRY_FUZZ_SECONDS", 15);
/** Connections in flight at once. */
const CONCURRENCY = 4;
/** Our own deadline per connection; the server's timeouts are shorter. */
const CONNECTION_DEADLINE_MS = 3000;

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** `concat` of @std/bytes, with the parts as arguments (as this file calls it). */
function concat(...parts: Uint8Array[]): Uint8Array {
  return concatBytes(parts);
}

// ---------------------------------------------------------------------------
// Valid session streams, built by hand with the protocol's encoders
// ---------------------------------------------------------------------------

const MTIME = 1_700_000_000_000;
const PREAMBLE = encodePreamble({ version: PROTOCOL_VERSION, channel: Channel.plain });
const CPACE_PREAMBLE = encodePreamble({ version: PROTOCOL_VERSION, channel: Channel.cpace });
const HELLO = { software: "ferry-fuzz", digests: ["sha256"], features: [] as string[] };
const TRANSFER = "f0220000000000000000000000000000";

type Item =
  | {
    kind: "file";
    path: string;
    content: Uint8Array;
    /** Announce size null (a streamed file). */
    streamed?: boolean;
    /** DATA chunk size. */
    chunk?: number;
    /** Send only this many bytes, then FILE_ABORT. */
    abortAfter?: number;
  }
  | { kind: "dir"; path: string };

interface StreamSpec {
  name: string;
  batches: Item[][];
  hello?: Record<string, unknown>;
  /** Answer a (hoped-for) resume offer with FILE_START offset 0 before each file's data. */
  fileStart?: boolean;
  /** Announce every batch before any data (the announce window allows it). */
  pipelined?: boolean;
  /** Expected to end cleanly when sent unmutated (resume streams depend on earlier sessions). */
  clean: boolean;
}

interface ValidStream {
  name: string;
  bytes: Uint8Array;
  clean: boolean;
}

/** The stream of `spec`, with every path under `prefix` (e.g. "run3/", or ""). */
function buildStream(spec: StreamSpec, prefix = ""): ValidStream {
  const parts: Uint8Array[] = [PREAMBLE];
  parts.push(encodeFrame(FrameType.HELLO, encodeJson(spec.hello ?? HELLO)));
  let id = 0;
  const batches = spec.batches.map((items, batch) => {
    const entries = items.map((item) => ({
      item,
      entry: {
        id: id++,
        path: prefix + item.path,
        kind: item.kind,
        size: item.kind === "file" ? (item.streamed ? null : item.content.length) : null,
        mtime: MTIME,
        mode: item.kind === "file" ? 0o644 : 0o755,
      },
    }));
    const announce = encodeFrame(
      FrameType.ANNOUNCE,
      encodeJson({ batch, entries: entries.map((e) => e.entry) }),
    );
    const data: Uint8Array[] = [];
    for (const { item, entry } of entries) {
      if (item.kind !== "file") continue;
      if (spec.fileStart) {
        data.push(encodeFrame(FrameType.FILE_START, encodeFileStart({ id: entry.id, offset: 0 })));
      }
      const sent = item.content.subarray(0, item.abortAfter ?? item.content.length);
      const chunk = item.chunk ?? 16 * 1024;
      for (let at = 0; at < sent.length; at += chunk) {
        data.push(encodeFrame(FrameType.DATA, sent.subarray(at, at + chunk)));
      }
      if (item.abortAfter !== undefined) {
        data.push(
          encodeFrame(
            FrameType.FILE_ABORT,
            encodeFileAbort({ id: entry.id, reason: "the file changed" }),
          ),
        );
      } else {
        data.push(
          encodeFrame(
            FrameType.FILE_END,
            encodeFileEnd({
              id: entry.id,
              length: item.content.length,
              digest: sha256(item.content),
            }),
          ),
        );
      }
    }
    return { announce, data };
  });
  if (spec.pipelined) {
    for (const b of batches) parts.push(b.announce);
    for (const b of batches) parts.push(...b.data);
  } else {
    for (const b of batches) parts.push(b.announce, ...b.data);
  }
  parts.push(encodeFrame(FrameType.DONE, new Uint8Array(0)));
  return { name: spec.name, bytes: concat(...parts), clean: spec.clean };
}

/** The valid stream specs, and the SHA-256 (hex) of every content they can store. */
function validSpecs(rng: Rng): { specs: StreamSpec[]; digests: Set<string> } {
  const text = (s: string) => new TextEncoder().encode(s);
  const contents = {
    hello: text("hello, ferry\n"),
    one: rng.bytes(3000),
    two: text("two\n".repeat(50)),
    three: rng.bytes(700),
    empty: new Uint8Array(0),
    stream: rng.bytes(5000),
    x1: rng.bytes(1234),
    y2: text("y2"),
    aborted: rng.bytes(100),
    after: text("after the abort\n"),
    resumed: rng.bytes(2000),
  };
  const many: Item[] = [];
  for (let i = 0; i < 20; i++) {
    many.push({ kind: "file", path: `many/f${i}.txt`, content: text(`file ${i}\n`) });
  }
  many.push({ kind: "dir", path: "many" });
  const specs: StreamSpec[] = [
    {
      name: "one file",
      batches: [[{ kind: "file", path: "hello.txt", content: contents.hello }]],
      clean: true,
    },
    {
      name: "nested dirs",
      batches: [[
        { kind: "file", path: "docs/a/one.bin", content: contents.one, chunk: 1000 },
        { kind: "file", path: "docs/a/two.txt", content: contents.two },
        { kind: "dir", path: "docs/a" },
        { kind: "file", path: "docs/three.md", content: contents.three },
        { kind: "dir", path: "docs" },
      ]],
      clean: true,
    },
    {
      name: "zero-byte file",
      batches: [[{ kind: "file", path: "empty.dat", content: contents.empty }]],
      clean: true,
    },
    {
      name: "streamed file",
      batches: [[{
        kind: "file",
        path: "stream.log",
        content: contents.stream,
        streamed: true,
        chunk: 777,
      }]],
      clean: true,
    },
    {
      name: "two batches, pipelined",
      batches: [
        [{ kind: "file", path: "b/x1", content: contents.x1, chunk: 500 }, {
          kind: "dir",
          path: "b",
        }],
        [{ kind: "file", path: "y2.bin", content: contents.y2 }],
      ],
      pipelined: true,
      clean: true,
    },
    {
      name: "two batches",
      batches: [
        [{ kind: "file", path: "c/d/x1", content: contents.x1 }, { kind: "dir", path: "c/d" }],
        [{ kind: "file", path: "c/y2.bin", content: contents.y2 }, { kind: "dir", path: "c" }],
      ],
      clean: true,
    },
    {
      name: "aborted file, then another",
      batches: [[
        { kind: "file", path: "aborted.bin", content: contents.aborted, abortAfter: 40 },
        { kind: "file", path: "after.txt", content: contents.after },
      ]],
      clean: true,
    },
    {
      name: "many small files",
      batches: [many],
      clean: true,
    },
    {
      name: "resumable transfer",
      hello: { ...HELLO, features: ["resume"], transfer: TRANSFER },
      batches: [[
        { kind: "file", path: "resume/r.bin", content: contents.resumed, chunk: 500 },
        { kind: "dir", path: "resume" },
      ]],
      clean: false,
    },
    {
      name: "resumable transfer declining the offer",
      hello: { ...HELLO, features: ["resume"], transfer: TRANSFER },
      batches: [[{ kind: "file", path: "resume/r.bin", content: contents.resumed, chunk: 500 }]],
      fileStart: true,
      clean: false,
    },
  ];
  const digests = new Set(Object.values(contents).map((c) => hex(sha256(c))));
  for (const item of many) if (item.kind === "file") digests.add(hex(sha256(item.content)));
  return { specs, digests };
}

// ---------------------------------------------------------------------------
// Mutations
// ---------------------------------------------------------------------------

/** Names a hostile sender might try; most must be refused, none may escape DIR. */
const HOSTILE_NAMES = [
  "../x",
  "/etc/passwd",
  "C:\\x",
  "a\u0000b",
  ".ferry/x",
  "CON",
  "..",
  ".",
  "",
  "../outside.txt",
  "a/../../outside.txt",
  "../outside/secret.txt",
  "escape/x.txt",
  "escape/../../outside.txt",
  "escape",
  ".ferry",
  ".FERRY/tmp/x",
  ".ferry/tmp/evil.tmp",
  ".ferry/partial/x.part",
  "a//b",
  "./a",
  "a/./b",
  "a/",
  "/",
  "//server/share",
  "\\\\server\\share\\x",
  "..\\..\\x",
  "c:x",
  "nul.txt",
  "aux .txt",
  "COM1",
  "a.",
  "a ",
  "x\u007f",
  "x\u0085y",
  "\ud800",
  "a\u202eb.txt",
  "x".repeat(256),
  "d/".repeat(200) + "f",
  "é".repeat(2100),
  "hello.txt/inner",
  "docs/a/one.bin/x",
  "%2e%2e/x",
  "\uff0e\uff0e/x",
  "~/.ssh/authorized_keys",
  "a:b",
  'a*?<>|"b',
];

/** Values of the wrong type or out of range for any field. */
const HOSTILE_VALUES: unknown[] = [
  -1,
  1.5,
  -0,
  2 ** 31,
  2 ** 32,
  2 ** 32 - 1,
  2 ** 53 - 1,
  2 ** 53,
  1e308,
  8.64e15 + 1,
  0o7777,
  0o10000,
  null,
  true,
  false,
  "",
  "0",
  [],
  {},
  [null],
  { id: 0 },
  "dir",
  "file",
  "symlink",
  "resume",
];

/** A fresh copy of one of HOSTILE_VALUES (the shared ones must never be changed). */
function hostileValue(rng: Rng): unknown {
  return structuredClone(rng.pick(HOSTILE_VALUES));
}

const LENGTHS = (len: number) => [
  0xffff_ffff,
  2 ** 31,
  2 ** 31 - 1,
  len + 1,
  Math.max(0, len - 1),
  0,
  MAX_FRAME_PAYLOAD,
  MAX_FRAME_PAYLOAD + 1,
  64 * 1024,
  64 * 1024 + 1,
  77,
];

const FRAME_TYPES = Object.values(FrameType) as number[];

interface FrameAt {
  at: number;
  type: number;
  length: number;
  /** The whole payload is inside the stream. */
  whole: boolean;
}

/** Walks the frames of a (possibly damaged) stream, from after the preamble, while headers fit. */
function framesOf(bytes: Uint8Array): FrameAt[] {
  const out: FrameAt[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  let at = PREAMBLE.length;
  while (at + 5 <= bytes.length) {
    const length = view.getUint32(at + 1);
    const whole = at + 5 + length <= bytes.length;
    out.push({ at, type: bytes[at]!, length, whole });
    if (!whole) break;
    at += 5 + length;
  }
  return out;
}

function frameEnd(f: FrameAt): number {
  return f.at + 5 + f.length;
}

/** Collects every [container, key] slot of a parsed JSON value. */
function slotsOf(value: unknown, out: [Record<string, unknown>, string][] = []) {
  if (typeof value === "object" && value !== null) {
    const obj = value as Record<string, unknown>;
    for (const key of Object.keys(obj)) {
      out.push([obj, key]);
      slotsOf(obj[key], out);
    }
  }
  return out;
}

type Mutator = (bytes: Uint8Array, rng: Rng, others: ValidStream[]) => Uint8Array;

const MUTATORS: Record<string, Mutator> = {
  flipBits(bytes, rng) {
    const out = bytes.slice();
    if (out.length === 0) return out;
    for (let n = rng.range(1, 8); n > 0; n--) out[rng.int(out.length)]! ^= 1 << rng.int(8);
    return out;
  },
  overwrite(bytes, rng) {
    const out = bytes.slice();
    if (out.length === 0) return out;
    const at = rng.int(out.length);
    const n = Math.min(out.length - at, rng.range(1, 16));
    for (let i = 0; i < n; i++) {
      out[at + i] = rng.chance(0.5) ? rng.pick([0x00, 0xff, 0x7f, 0x80, 0x22, 0x2f]) : rng.int(256);
    }
    return out;
  },
  insert(bytes, rng) {
    const at = rng.int(bytes.length + 1);
    return concat(bytes.subarray(0, at), rng.bytes(rng.range(1, 64)), bytes.subarray(at));
  },
  deleteRange(bytes, rng) {
    const at = rng.int(bytes.length + 1);
    const n = rng.size(bytes.length - at);
    return concat(bytes.subarray(0, at), bytes.subarray(at + n));
  },
  duplicateRange(bytes, rng) {
    const from = rng.int(bytes.length + 1);
    const range = bytes.slice(from, from + rng.size(bytes.length - from));
    const at = rng.int(bytes.length + 1);
    return concat(bytes.subarray(0, at), range, bytes.subarray(at));
  },
  truncate(bytes, rng) {
    return bytes.slice(0, rng.int(bytes.length + 1));
  },
  splice(bytes, rng, others) {
    const other = rng.pick(others).bytes;
    if (rng.chance(0.5)) {
      return concat(
        bytes.subarray(0, rng.int(bytes.length + 1)),
        other.subarray(rng.int(other.length + 1)),
      );
    }
    // At frame boundaries, so both halves still parse.
    const mine = framesOf(bytes);
    const theirs = framesOf(other);
    const cut = mine.length > 0 ? rng.pick(mine).at : bytes.length;
    const from = theirs.length > 0 ? rng.pick(theirs).at : other.length;
    return concat(bytes.subarray(0, cut), other.subarray(from));
  },
  frameLength(bytes, rng) {
    const frames = framesOf(bytes);
    if (frames.length === 0) return bytes;
    const f = rng.pick(frames);
    const out = bytes.slice();
    const value = rng.chance(0.8) ? rng.pick(LENGTHS(f.length)) : rng.u32();
    new DataView(out.buffer).setUint32(f.at + 1, value);
    return out;
  },
  frameType(bytes, rng) {
    const frames = framesOf(bytes);
    if (frames.length === 0) return bytes;
    const out = bytes.slice();
    out[rng.pick(frames).at] = rng.chance(0.8) ? rng.pick(FRAME_TYPES) : rng.int(256);
    return out;
  },
  dropFrame(bytes, rng) {
    const frames = framesOf(bytes).filter((f) => f.whole);
    if (frames.length === 0) return bytes;
    const f = rng.pick(frames);
    return concat(bytes.subarray(0, f.at), bytes.subarray(frameEnd(f)));
  },
  duplicateFrame(bytes, rng) {
    const frames = framesOf(bytes).filter((f) => f.whole);
    if (frames.length === 0) return bytes;
    const f = rng.pick(frames);
    const copy = bytes.slice(f.at, frameEnd(f));
    const at = rng.chance(0.5) ? frameEnd(f) : rng.pick(frames).at;
    return concat(bytes.subarray(0, at), copy, bytes.subarray(at));
  },
  swapFrames(bytes, rng) {
    const frames = framesOf(bytes).filter((f) => f.whole);
    if (frames.length < 2) return bytes;
    const i = rng.int(frames.length - 1);
    const [a, b] = [frames[i]!, frames[i + 1]!];
    return concat(
      bytes.subarray(0, a.at),
      bytes.subarray(b.at, frameEnd(b)),
      bytes.subarray(a.at, frameEnd(a)),
      bytes.subarray(frameEnd(b)),
    );
  },
  hostileJson(bytes, rng) {
    const candidates: { frame: FrameAt; value: unknown }[] = [];
    for (const frame of framesOf(bytes)) {
      if (!frame.whole || frame.length === 0) continue;
      const payload = bytes.subarray(frame.at + 5, frameEnd(frame));
      if (payload[0] !== 0x7b) continue; // "{"
      try {
        candidates.push({ frame, value: JSON.parse(new TextDecoder().decode(payload)) });
      } catch { /* not JSON */ }
    }
    if (candidates.length === 0) return bytes;
    const { frame, value } = rng.pick(candidates);
    const slots = slotsOf(value);
    if (slots.length === 0) return bytes;
    const paths = slots.filter(([, key]) => key === "path");
    const [obj, key] = paths.length > 0 && rng.chance(0.6) ? rng.pick(paths) : rng.pick(slots);
    const roll = rng.next();
    if (typeof obj[key] === "string" || roll < 0.5) obj[key] = rng.pick(HOSTILE_NAMES);
    else if (roll < 0.9) obj[key] = hostileValue(rng);
    else delete obj[key];
    const replaced = encodeFrame(frame.type as FrameTypeCode, encodeJson(value));
    return concat(bytes.subarray(0, frame.at), replaced, bytes.subarray(frameEnd(frame)));
  },
};

const MUTATOR_NAMES = Object.keys(MUTATORS);

// ---------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------

interface Case {
  index: number;
  what: string;
  bytes: Uint8Array;
  /** An unmutated valid stream that should end cleanly. */
  expectClean: boolean;
  /** How long we wait for the server to close before closing ourselves. */
  deadlineMs?: number;
}

/**
 * Cases this far apart use their own top-level folder for the valid
 * streams' names. Otherwise a long run piles up thousands of "name (N).ext"
 * copies, and placing one more (the receiver tries the numbers in turn)
 * takes longer than the short idle timeout this test gives the server.
 */
const CASES_PER_FOLDER = 200;

/** The ristretto255 base point: a valid CPace share. */
const RISTRETTO_BASE_POINT = Uint8Array.from(
  "e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76".match(/../g)!,
  (h) => parseInt(h, 16),
);

/**
 * The opening of the secure channel with made-up key material: it cannot
 * succeed (the exchange needs the receiver's answer), but it reaches the
 * receiver's key-exchange parsing and its wrong-code guard.
 */
function cpaceAttempt(rng: Rng): Uint8Array {
  const parts = [CPACE_PREAMBLE, encodeFrame(FrameType.CHANNEL_OPEN, rng.bytes(16))];
  if (rng.chance(0.8)) {
    // A valid point (the ristretto255 base point) gets past the share's decoding, to the
    // confirmation and the wrong-code guard; random bytes mostly do not. Rarely: after a
    // few wrong codes the guard delays its answers past the handshake timeout (1 s each).
    const point = rng.chance(0.15) ? RISTRETTO_BASE_POINT : rng.bytes(32);
    const share = concat(point, senderAd(["aes-256-gcm", "chacha20-poly1305"]));
    parts.push(
      encodeFrame(FrameType.KEY_SHARE, share.subarray(0, rng.chance(0.8) ? undefined : 31)),
    );
    if (rng.chance(0.7)) parts.push(encodeFrame(FrameType.KEY_CONFIRM, rng.bytes(32)));
    if (rng.chance(0.3)) parts.push(encodeFrame(FrameType.HELLO, encodeJson(HELLO)));
  }
  return concat(...parts);
}

function makeCase(index: number, rng: Rng, validFor: (index: number) => ValidStream[]): Case {
  const valid = validFor(index);
  const roll = rng.next();
  if (roll > 0.92) {
    let bytes = rng.chance(0.2)
      ? concat(CPACE_PREAMBLE, rng.bytes(rng.size(4096)))
      : cpaceAttempt(rng);
    const applied: string[] = [];
    if (rng.chance(0.5)) {
      for (let n = rng.range(1, 2); n > 0; n--) {
        const name = rng.pick(MUTATOR_NAMES.filter((m) => m !== "splice"));
        bytes = MUTATORS[name]!(bytes, rng, valid); // name is a key of MUTATORS
        applied.push(name);
      }
    }
    return {
      index,
      what: `secure channel attempt${applied.length ? ` mutated by ${applied.join(", ")}` : ""}`,
      bytes,
      expectClean: false,
      // Once a few wrong codes are counted, the guard delays every key share past the
      // handshake timeout: do not let that hold up a worker for a second each time.
      deadlineMs: 300,
    };
  }
  if (roll < 0.08) {
    const stream = rng.pick(valid);
    return {
      index,
      what: `valid "${stream.name}"`,
      bytes: stream.bytes,
      expectClean: stream.clean,
    };
  }
  if (roll < 0.2) {
    // Random but well-formed frames after a valid handshake.
    const parts = [PREAMBLE, encodeFrame(FrameType.HELLO, encodeJson(HELLO))];
    for (let n = rng.range(1, 6); n > 0; n--) {
      const type = rng.pick(FRAME_TYPES) as FrameTypeCode;
      const len = type === FrameType.DONE ? 0 : rng.size(type === FrameType.FILE_START ? 12 : 300);
      parts.push(encodeFrame(type, rng.bytes(len)));
    }
    return {
      index,
      what: "random frames after HELLO",
      bytes: concat(...parts),
      expectClean: false,
    };
  }
  if (roll < 0.4) {
    const garbage = rng.bytes(rng.size(64 * 1024));
    const prefix = rng.pick(["", "preamble", "preamble+HELLO"]);
    const bytes = prefix === ""
      ? garbage
      : prefix === "preamble"
      ? concat(PREAMBLE, garbage)
      : concat(PREAMBLE, encodeFrame(FrameType.HELLO, encodeJson(HELLO)), garbage);
    return {
      index,
      what: `${garbage.length} random bytes${prefix ? ` after ${prefix}` : ""}`,
      bytes,
      expectClean: false,
    };
  }
  const stream = rng.pick(valid);
  let bytes = stream.bytes;
  const applied: string[] = [];
  for (let n = rng.range(1, 4); n > 0; n--) {
    // Hostile JSON is what reaches the name checks; give it a larger share.
    const name = rng.chance(0.25) ? "hostileJson" : rng.pick(MUTATOR_NAMES);
    bytes = MUTATORS[name]!(bytes, rng, valid); // name is a key of MUTATORS
    applied.push(name);
  }
  return {
    index,
    what: `"${stream.name}" mutated by ${applied.join(", ")}`,
    bytes,
    expectClean: false,
  };
}

// ---------------------------------------------------------------------------
// Sending one stream
// ---------------------------------------------------------------------------

/** Sends `bytes`, half-closes, and reads until the server closes (or our deadline). Returns our port. */
async function exchange(
  port: number,
  bytes: Uint8Array,
  deadlineMs = CONNECTION_DEADLINE_MS,
): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const local = conn.localAddr.port;
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    try {
      conn.close();
    } catch { /* already closed */ }
  };
  const timer = setTimeout(close, deadlineMs);
  const reading = (async () => {
    const sink = new Uint8Array(64 * 1024);
    try {
      while ((await conn.read(sink)) !== null) { /* discard */ }
    } catch { /* reset, or closed by our deadline */ }
  })();
  try {
    let done = 0;
    while (done < bytes.length) done += await conn.write(bytes.subarray(done));
    await conn.closeWrite();
  } catch { /* the server closed first */ }
  await reading;
  clearTimeout(timer);
  close();
  return local;
}

// ---------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------

const SENTINEL = new TextEncoder().encode("the sentinel outside DIR\n");
const SECRET = new TextEncoder().encode("the secret outside DIR\n");
/** The one symbolic link allowed in DIR: planted by the test, pointing outside. */
const PLANTED_LINK = "escape";

/** True if `path` has a C0/DEL/C1 control character or a backslash. */
function hasControlOrBackslash(path: string): boolean {
  for (const ch of path) {
    const c = ch.codePointAt(0)!;
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f) || ch === "\\") return true;
  }
  return false;
}

/** A snapshot of BASE without the inbox subtree. */
function outsideDir(tree: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(tree).filter(([path]) => path !== "inbox" && !path.startsWith("inbox/")),
  );
}

Deno.test(
  "receiver survives seeded random and mutated streams without writing outside DIR",
  async () => {
    console.log(
      `fuzz: FERRY_FUZZ_SEED=${SEED} FERRY_FUZZ_ITERATIONS=${ITERATIONS} FERRY_FUZZ_SECONDS=${SECONDS}`,
    );
    const rng = new Rng(SEED);
    const { specs, digests } = validSpecs(rng);
    const built = new Map<string, ValidStream[]>();
    const validFor = (index: number) => {
      const n = Math.floor(index / CASES_PER_FOLDER);
      const prefix = n === 0 ? "" : `run${n}/`;
      let streams = built.get(prefix);
      if (!streams) {
        streams = specs.map((spec) => buildStream(spec, prefix));
        built.set(prefix, streams);
        built.delete(`run${n - 2}/`);
      }
      return streams;
    };
    await using baseDir = await tempDir("ferry-fuzz-");
    const base = baseDir.path;
    await using sourcesDir = await tempDir("ferry-fuzz-src-");
    const sources = sourcesDir.path;
    const dir = join(base, "inbox");
    const unexpected: string[] = [];
    const consoleError = console.error;
    console.error = (...args: unknown[]) => {
      unexpected.push(args.map(String).join(" "));
      consoleError(...args);
    };
    let srv: TestServer | null = null;
    try {
      await Deno.mkdir(dir);
      await Deno.mkdir(join(base, "outside"));
      await Deno.writeFile(join(base, "outside.txt"), SENTINEL);
      await Deno.writeFile(join(base, "outside", "secret.txt"), SECRET);
      await Deno.symlink("../outside", join(dir, PLANTED_LINK));
      const before = outsideDir(await snapshot(base));

      // The plain channel carries the hand-built streams (the secure one needs the
      // receiver's answers); it runs the same session code above the framing.
      srv = await startServer(dir, {
        plaintext: true,
        limits: { handshakeTimeoutMs: 1000, idleTimeoutMs: 1000 },
      });
      const server = srv;
      const cases = new Map<number, Case>();
      const ports = new Map<string, Case[]>();
      const deadline = Date.now() + SECONDS * 1000;
      let next = 0;
      const worker = async () => {
        while (next < ITERATIONS && Date.now() < deadline) {
          const c = makeCase(next++, rng, validFor);
          const port = await exchange(server.port, c.bytes, c.deadlineMs);
          cases.set(c.index, c);
          const key = `127.0.0.1:${port}`;
          ports.set(key, [...(ports.get(key) ?? []), c]);
        }
      };
      const started = performance.now();
      await Promise.all(Array.from({ length: CONCURRENCY }, worker));
      const ran = cases.size;
      console.log(
        `fuzz: ${ran} streams in ${((performance.now() - started) / 1000).toFixed(1)} s` +
          (ran < ITERATIONS ? ` (stopped early after ${SECONDS} s)` : ""),
      );

      const starts = () => server.events.filter((e) => e.type === "session-start").length;
      const ends = () => server.events.filter((e) => e.type === "session-end").length;
      try {
        await waitFor("every session to end", () => starts() === ends(), 10_000);
      } catch {
        throw new Error(`sessions still running 10 s after the last stream: ${starts() - ends()}`);
      }

      // Which case each session ran (for the report of a failure).
      const sessionCase = new Map<number, Case>();
      const queues = new Map([...ports].map(([k, v]) => [k, [...v]]));
      for (const e of server.events) {
        if (e.type !== "session-start") continue;
        const c = queues.get(e.peer)?.shift();
        if (c) sessionCase.set(e.session, c);
      }
      const describe = (session: number) => {
        const c = sessionCase.get(session);
        if (!c) return "(unknown case)";
        const shown = c.bytes.subarray(0, 1024);
        return `case #${c.index}: ${c.what}, ${c.bytes.length} bytes:\n${hex(shown)}${
          c.bytes.length > shown.length ? "..." : ""
        }`;
      };

      if (Deno.env.get("FERRY_FUZZ_STATS")) {
        const tally = new Map<string, number>();
        for (const e of server.events) {
          const key = e.type === "session-end"
            ? `end: ${(e.error ?? "clean").replace(/[0-9]+/g, "N").slice(0, 70)}`
            : e.type === "refused" || e.type === "file-failed"
            ? `${e.type}: ${e.reason.replace(/[0-9]+/g, "N").slice(0, 60)}`
            : e.type;
          tally.set(key, (tally.get(key) ?? 0) + 1);
        }
        console.log(
          [...tally].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${n}\t${k}`).join("\n"),
        );
      }

      // No internal errors, nothing that failed unexpectedly.
      const ended = server.events.filter((e): e is Extract<ServerEvent, { type: "session-end" }> =>
        e.type === "session-end"
      );
      const internal = ended.filter((e) => e.error?.startsWith("internal error"));
      for (const e of internal) {
        console.log(`fuzz: session ${e.session} ended with ${e.error}\n${describe(e.session)}`);
      }
      assertEquals(internal.length, 0, `sessions ended with an internal error (seed ${SEED})`);
      assertEquals(unexpected, [], `the server logged unexpected failures (seed ${SEED})`);

      // Unmutated valid streams went through (so the fuzzing reaches deep states).
      for (const e of ended) {
        const c = sessionCase.get(e.session);
        if (c?.expectClean && e.error !== undefined) {
          throw new Error(`a valid stream failed: ${e.error}\n${describe(e.session)}`);
        }
      }

      // DIR/.ferry/tmp is empty once the sessions have ended.
      const staging = join(dir, ".ferry", "tmp");
      const staged = async () => {
        const names: string[] = [];
        for await (const e of Deno.readDir(staging)) names.push(e.name);
        return names;
      };
      try {
        await waitFor("DIR/.ferry/tmp to empty", async () => (await staged()).length === 0, 5000);
      } catch {
        throw new Error(`temp files left in DIR/.ferry/tmp: ${(await staged()).join(", ")}`);
      }

      // Nothing outside DIR changed.
      assertEquals(outsideDir(await snapshot(base)), before, "nothing outside DIR may change");

      // Everything in DIR stays inside it and holds content a valid stream carried.
      const tree = await snapshot(dir);
      assertEquals(tree[PLANTED_LINK]?.kind, "link");
      assertEquals(await Deno.readLink(join(dir, PLANTED_LINK)), "../outside");
      const stored = new Set(
        server.events.flatMap((e) => e.type === "file" ? [e.name] : []),
      );
      for (const [path, entry] of Object.entries(tree)) {
        const parts = path.split("/");
        assert(!parts.includes(".."), `a path in DIR contains '..': ${JSON.stringify(path)}`);
        assert(
          parts[0]!.toLowerCase() !== ".ferry",
          `a peer wrote into the staging folder: ${JSON.stringify(path)}`,
        );
        assert(
          !hasControlOrBackslash(path),
          `a path in DIR has a control character or backslash: ${JSON.stringify(path)}`,
        );
        if (path === PLANTED_LINK) continue;
        assert(entry.kind !== "link", `a symbolic link appeared in DIR: ${JSON.stringify(path)}`);
        if (entry.kind === "file") {
          assert(
            digests.has(entry.sha256!),
            `${JSON.stringify(path)} holds content no valid stream carried (seed ${SEED})`,
          );
          assert(
            stored.has(path),
            `${JSON.stringify(path)} is in DIR, but was never reported stored`,
          );
        }
      }
      for (const name of stored) {
        assertEquals(tree[name]?.kind, "file", `${JSON.stringify(name)} was reported stored`);
      }

      // The server still serves a good client.
      const content = rng.bytes(100_000);
      const goodName = `fuzz-good-${SEED}.bin`;
      await Deno.writeFile(join(sources, goodName), content);
      const events: SendEvent[] = [];
      const result = await send({
        to: { host: "127.0.0.1", port: server.port },
        sources: await resolveSources([join(sources, goodName)], "stdin"),
        connectTimeoutMs: 5000,
        idleTimeoutMs: 5000,
        retries: 0,
        // Plain, because the made-up key shares may have locked 127.0.0.1 out of the
        // secure channel (the wrong-code guard), as they should.
        plaintext: true,
        software: "ferry-fuzz-good-client",
        onEvent: (e) => events.push(e),
      });
      assertEquals(
        result.files,
        1,
        `the good client's file should arrive: ${JSON.stringify(events)}`,
      );
      const done = events.find((e) => e.type === "file-done");
      if (done?.type !== "file-done") throw new Error("the good client reported no file-done");
      assertEquals(await Deno.readFile(join(dir, done.name)), content);
      assertEquals(outsideDir(await snapshot(base)), before, "nothing outside DIR may change");
    } finally {
      console.error = consoleError;
      await srv?.close();
    }
  },
);

// ---------------------------------------------------------------------------
// The pure decoders
// ---------------------------------------------------------------------------

const JSON_KEYS = [
  "id",
  "path",
  "kind",
  "size",
  "mtime",
  "mode",
  "batch",
  "entries",
  "decisions",
  "acks",
  "action",
  "ok",
  "name",
  "reason",
  "retry",
  "skipped",
  "offset",
  "prefix",
  "software",
  "digests",
  "features",
  "transfer",
  "digest",
  "limits",
  "maxBatchEntries",
  "maxFrame",
  "maxPathBytes",
  "files",
  "bytes",
  "failed",
  "code",
  "message",
  "__proto__",
  "constructor",
  "toString",
  "length",
];

function randomJson(rng: Rng, depth = 0): unknown {
  switch (rng.int(depth >= 3 ? 4 : 7)) {
    case 0:
      return rng.pick([null, true, false]);
    case 1:
      return rng.chance(0.7) ? hostileValue(rng) : rng.range(-5, 5000);
    case 2:
      return rng.chance(0.5)
        ? rng.pick(HOSTILE_NAMES)
        : rng.pick(["sha256", "accept", "0af", TRANSFER]);
    case 3:
      return hostileValue(rng);
    case 4:
    case 5: {
      const obj: Record<string, unknown> = {};
      for (let n = rng.range(0, 8); n > 0; n--) {
        obj[rng.pick(JSON_KEYS)] = randomJson(rng, depth + 1);
      }
      return obj;
    }
    default:
      return Array.from({ length: rng.size(6) }, () => randomJson(rng, depth + 1));
  }
}

/** A payload for the decoders: random bytes, or random JSON (often shaped like a message). */
function randomPayload(rng: Rng): Uint8Array {
  const roll = rng.next();
  let payload: Uint8Array;
  if (roll < 0.4) payload = rng.bytes(rng.size(80));
  else {
    const value = randomJson(rng);
    if (roll < 0.8 && typeof value === "object" && value !== null && !Array.isArray(value)) {
      // Shape it like one of the messages.
      const obj = value as Record<string, unknown>;
      const shape = rng.pick(["announce", "plan", "acks", "hello", "welcome"]);
      const list = () => Array.from({ length: rng.range(0, 4) }, () => randomJson(rng, 1));
      if (shape === "announce") {
        Object.assign(obj, { batch: rng.pick([0, 1, -1, 2 ** 32]), entries: list() });
      }
      if (shape === "plan") Object.assign(obj, { batch: 0, decisions: list() });
      if (shape === "acks") Object.assign(obj, { acks: list() });
      if (shape === "hello") Object.assign(obj, { software: "x", digests: ["sha256"] });
      if (shape === "welcome") {
        Object.assign(obj, { software: "x", digest: "sha256", limits: randomJson(rng, 1) });
      }
    }
    payload = encodeJson(value);
    if (rng.chance(0.1)) payload = MUTATORS.flipBits!(payload, rng, []);
  }
  // Put it at a random offset of a larger buffer: decoders must honour byteOffset.
  const offset = rng.int(9);
  const buffer = rng.bytes(offset + payload.length + rng.int(9));
  buffer.set(payload, offset);
  return buffer.subarray(offset, offset + payload.length);
}

Deno.test("protocol decoders answer random input with a value or a ProtocolError, nothing else", () => {
  const rng = new Rng(SEED ^ 0x9e3779b9);
  const decoders: [string, (p: Uint8Array) => unknown][] = [
    ["parseHeader", (p) => parseHeader(p, rng.pick([0, 4096, MAX_FRAME_PAYLOAD, 2 ** 32]))],
    ["decodeFileEnd", decodeFileEnd],
    ["decodeFileStart", decodeFileStart],
    ["decodeFileAbort", decodeFileAbort],
    ["decodeHello", decodeHello],
    ["decodeAnnounce+checkEntry", (p) => decodeAnnounce(p).entries.map(checkEntry)],
    ["decodePlan", decodePlan],
    ["decodeAcks", decodeAcks],
    ["decodeWelcome", decodeWelcome],
    ["decodeBye", decodeBye],
    ["decodePreamble", decodePreamble],
  ];
  const rounds = Math.min(5000, Math.max(500, ITERATIONS * 4));
  let accepted = 0;
  for (let i = 0; i < rounds; i++) {
    const payload = rng.chance(0.05)
      ? concat(PREAMBLE.subarray(0, rng.int(9)), rng.bytes(rng.int(3)))
      : randomPayload(rng);
    for (const [name, decode] of decoders) {
      try {
        decode(payload);
        accepted++;
      } catch (err) {
        if (!(err instanceof ProtocolError)) {
          throw new Error(
            `${name} threw ${err instanceof Error ? err.name : typeof err} on ${
              hex(payload)
            } (seed ${SEED}, round ${i}): ${err instanceof Error ? err.stack : String(err)}`,
          );
        }
      }
    }
    // decodeError never throws: an unreadable ERROR still ends the session with a message.
    const e = decodeError(payload);
    assert(typeof e.code === "string" && typeof e.message === "string");
  }
  assert(accepted > 0, "some random inputs should decode");
});
