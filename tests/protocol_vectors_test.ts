/**
 * The test vectors of docs/PROTOCOL.md, Appendix A: ferry's handshake, key
 * schedule and records with fixed inputs. This test reads the appendix,
 * takes its inputs, recomputes every other value with ferry's code (and the
 * records once more with node:crypto alone) and compares them, so the
 * appendix cannot drift from the code.
 *
 * To print the appendix's value blocks from the inputs below (after a
 * deliberate change of the key schedule, say):
 *
 *   deno run --allow-ffi tests/protocol_vectors_test.ts
 */
import { assert, assertEquals } from "@std/assert";
import { createCipheriv } from "node:crypto";
import { expand, extract } from "@noble/hashes/hkdf.js";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256, sha512 } from "@noble/hashes/sha2.js";
import { encodeFrame, FrameType } from "../src/protocol/frame.ts";
import { encodeJson } from "../src/protocol/messages.ts";
import { fingerprint, type Fingerprinted, fingerprintInput } from "../src/protocol/listing.ts";
import { Channel, encodePreamble, PROTOCOL_VERSION } from "../src/protocol/preamble.ts";
import { defaultAead, type Suite } from "../src/transport/aead.ts";
import { parseChoice, parseOffer, receiverAd, senderAd } from "../src/transport/channel.ts";
import {
  calculateGenerator,
  CPACE_DSI,
  cpaceFinish,
  cpaceStart,
  generatorString,
  lvCat,
  scalarMultVfy,
} from "../src/transport/cpace.ts";
import { normalizeCode } from "../src/transport/code.ts";
import { deriveSessionKeys, LABELS, recordKey } from "../src/transport/key_schedule.ts";
import { RecordOpener, RecordSealer } from "../src/transport/record_layer.ts";
import { loadRistretto255 } from "../src/transport/ristretto255_load.ts";
import { loadShortHashes } from "../src/transport/short_hashes.ts";

// The handshake's hashes where no OpenSSL loads (@noble/hashes) are imported by this first.
await loadShortHashes();

const PROTOCOL_MD = new URL("../docs/PROTOCOL.md", import.meta.url);
const utf8 = (s: string) => new TextEncoder().encode(s);

function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function fromHex(hex: string): Uint8Array {
  assert(/^([0-9a-f]{2})*$/.test(hex), `not hex: ${hex}`);
  return Uint8Array.from(hex.match(/../g) ?? [], (b) => parseInt(b, 16));
}

/** The fixed inputs (A.1), as the appendix gives them. */
interface Inputs {
  code: string;
  PRS: Uint8Array;
  P_s: Uint8Array;
  P_r: Uint8Array;
  mode: Uint8Array;
  nonce_s: Uint8Array;
  nonce_r: Uint8Array;
  ya: Uint8Array;
  yb: Uint8Array;
}

const CODE = "4821-crane-lotus-oyster";
/** The code, normalized (§4.2): the PRS's text. */
const NORMALIZED = normalizeCode(CODE) ?? "";
/** The sessions of A.3 and A.4: what the sender offers, what the receiver picks. */
const SESSIONS: { section: string; offer: Suite[]; choice: Suite }[] = [
  { section: "A.3", offer: ["aes-256-gcm", "chacha20-poly1305"], choice: "aes-256-gcm" },
  { section: "A.4", offer: ["chacha20-poly1305"], choice: "chacha20-poly1305" },
];

/** ya and yb: 32 bytes, little-endian, below 2^252 (so in [1, group order)). */
function testScalar(label: string): Uint8Array {
  const y = sha256(utf8(`ferry/1 test vector ${label}`));
  y[31]! &= 0x0f;
  return y;
}

function defaultInputs(): Inputs {
  const preamble = encodePreamble({ version: PROTOCOL_VERSION, channel: Channel.cpace });
  return {
    code: CODE,
    PRS: utf8(NORMALIZED),
    P_s: preamble,
    P_r: preamble,
    mode: Uint8Array.of(0),
    nonce_s: Uint8Array.from({ length: 16 }, (_, i) => i),
    nonce_r: Uint8Array.from({ length: 16 }, (_, i) => 0xf0 + i),
    ya: testScalar("ya"),
    yb: testScalar("yb"),
  };
}

/** What the data records carry: a DONE frame from the sender, a BYE frame from the receiver. */
const DATA_C2S = encodeFrame(FrameType.DONE, new Uint8Array(0));
/** The group's build ferry uses here: libsodium's where it loads, else @noble/curves'. */
const group = await loadRistretto255();

const DATA_S2C = encodeFrame(FrameType.BYE, encodeJson({ files: 1, bytes: 5, failed: 0 }));
const EPOCH_RECORDS = 65_536;

type Values = [string, Uint8Array][];

/** A.2: the CPace values both sessions share (they do not depend on the ADs). */
function cpaceValues(inp: Inputs): Values {
  const CI = lvCat(utf8("ferry/1 ci"), inp.P_s, inp.P_r, inp.mode);
  const sid = new Uint8Array([...inp.nonce_s, ...inp.nonce_r]);
  const genStr = generatorString(CPACE_DSI, inp.PRS, CI, sid, 128);
  const g = calculateGenerator(inp.PRS, CI, sid, group);
  const start = (y: Uint8Array, role: "initiator" | "responder") =>
    cpaceStart({ group, prs: inp.PRS, ci: CI, sid, ad: new Uint8Array(0), role, scalar: y })
      .message;
  const Ya = start(inp.ya, "initiator");
  const Yb = start(inp.yb, "responder");
  const K = scalarMultVfy(inp.ya, Yb, group);
  assertEquals(scalarMultVfy(inp.yb, Ya, group), K, "both sides get the same K");
  return [
    ["CI", CI],
    ["sid", sid],
    ["gen_str", genStr],
    ["gen_str_hash", sha512(genStr)],
    ["g", g],
    ["Ya", Ya],
    ["Yb", Yb],
    ["K", K],
  ];
}

/** A.3, A.4: one session's key schedule, handshake frames and records. */
function sessionValues(inp: Inputs, ADa: Uint8Array, ADb: Uint8Array): Values {
  const suite = parseChoice(ADb, parseOffer(ADa));
  const CI = lvCat(utf8("ferry/1 ci"), inp.P_s, inp.P_r, inp.mode);
  const sid = new Uint8Array([...inp.nonce_s, ...inp.nonce_r]);
  const a = cpaceStart({
    group,
    prs: inp.PRS,
    ci: CI,
    sid,
    ad: ADa,
    role: "initiator",
    scalar: inp.ya,
  });
  const b = cpaceStart({
    group,
    prs: inp.PRS,
    ci: CI,
    sid,
    ad: ADb,
    role: "responder",
    scalar: inp.yb,
  });
  const outA = cpaceFinish(a.state, b.message, ADb);
  const outB = cpaceFinish(b.state, a.message, ADa);
  assertEquals(outA.isk, outB.isk, "both sides get the same ISK");
  const keys = deriveSessionKeys(outA);
  assertEquals(deriveSessionKeys(outB), keys);
  // The schedule's intermediate values, which ferry's code keeps to itself, as §4.4 has them.
  const TH = sha256(lvCat(utf8(LABELS.transcript), sid, a.message, ADa, b.message, ADb));
  assertEquals(keys.transcriptHash, TH);
  const PRK = extract(sha256, outA.isk, new Uint8Array(32));
  const okm = (label: string) => expand(sha256, PRK, lvCat(utf8(label), TH), 32);
  const kc_s = okm(LABELS.confirmInitiator);
  const kc_r = okm(LABELS.confirmResponder);
  assertEquals(okm(LABELS.keyC2s), keys.c2s);
  assertEquals(okm(LABELS.keyS2c), keys.s2c);
  assertEquals(hmac(sha256, kc_s, TH), keys.initiatorConfirmation);
  assertEquals(hmac(sha256, kc_r, TH), keys.responderConfirmation);
  const open = new Uint8Array([...inp.mode, ...inp.nonce_r]);
  const records = (
    secret: Uint8Array,
    direction: "c2s" | "s2c",
    data: Uint8Array,
  ): [data: Uint8Array, close: Uint8Array] => {
    const sealer = new RecordSealer(secret, direction, { aead: defaultAead(suite) });
    return [sealer.seal(data), sealer.sealClose()];
  };
  const [c2s0, c2s1] = records(keys.c2s, "c2s", DATA_C2S);
  const [s2c0, s2c1] = records(keys.s2c, "s2c", DATA_S2C);
  // The first record of epoch 1: sequence number 65,536, sealed under the epoch's own key.
  const later = new RecordSealer(keys.c2s, "c2s", { aead: defaultAead(suite) });
  for (let seq = 0; seq < EPOCH_RECORDS; seq++) later.seal(new Uint8Array(0));
  const c2s65536 = later.seal(DATA_C2S);
  return [
    ["ISK", outA.isk],
    ["TH", TH],
    ["PRK", PRK],
    ["k_c2s", keys.c2s],
    ["k_s2c", keys.s2c],
    ["kc_s", kc_s],
    ["kc_r", kc_r],
    ["tag_s", keys.initiatorConfirmation],
    ["tag_r", keys.responderConfirmation],
    ["key_c2s_0", recordKey(keys.c2s, suite, 0)],
    ["key_s2c_0", recordKey(keys.s2c, suite, 0)],
    ["key_c2s_1", recordKey(keys.c2s, suite, 1)],
    ["key_s2c_1", recordKey(keys.s2c, suite, 1)],
    ["wire_s1", new Uint8Array([...inp.P_s, ...encodeFrame(FrameType.CHANNEL_OPEN, inp.nonce_s)])],
    ["wire_r1", new Uint8Array([...inp.P_r, ...encodeFrame(FrameType.CHANNEL_OPEN, open)])],
    ["wire_s2", encodeFrame(FrameType.KEY_SHARE, new Uint8Array([...a.message, ...ADa]))],
    [
      "wire_r2",
      encodeFrame(
        FrameType.KEY_SHARE,
        new Uint8Array([...b.message, ...keys.responderConfirmation, ...ADb]),
      ),
    ],
    ["wire_s3", encodeFrame(FrameType.KEY_CONFIRM, keys.initiatorConfirmation)],
    ["record_c2s_0", c2s0],
    ["record_c2s_1", c2s1],
    ["record_s2c_0", s2c0],
    ["record_s2c_1", s2c1],
    ["record_c2s_65536", c2s65536],
  ];
}

// ---------------------------------------------------------------------------
// The appendix as text

const WIDTH = 64; // hex digits per line

/** One value block: `name  hex`, long values continued on indented lines. */
function block(values: Values): string {
  const pad = Math.max(...values.map(([name]) => name.length)) + 2;
  const lines = ["```"];
  for (const [name, bytes] of values) {
    const hex = toHex(bytes);
    const chunks = hex.match(new RegExp(`.{1,${WIDTH}}`, "g")) ?? [""];
    lines.push(name.padEnd(pad) + chunks[0]);
    for (const chunk of chunks.slice(1)) lines.push(" ".repeat(pad) + chunk);
  }
  lines.push("```");
  return lines.join("\n");
}

function inputValues(inp: Inputs): Values {
  return [
    ["PRS", inp.PRS],
    ["P_s", inp.P_s],
    ["P_r", inp.P_r],
    ["mode", inp.mode],
    ["nonce_s", inp.nonce_s],
    ["nonce_r", inp.nonce_r],
    ["ya", inp.ya],
    ["yb", inp.yb],
  ];
}

/** The value blocks of the appendix, by section. */
function computeAll(inp: Inputs, ads: Map<string, [Uint8Array, Uint8Array]>) {
  const out = new Map<string, Values>([["A.1", inputValues(inp)], ["A.2", cpaceValues(inp)]]);
  for (const { section } of SESSIONS) {
    const [ADa, ADb] = ads.get(section)!;
    out.set(section, [["ADa", ADa], ["ADb", ADb], ...sessionValues(inp, ADa, ADb)]);
  }
  out.set("A.5", listingValues());
  return out;
}

/** A.5: the listing's fingerprints (§5.16) of three entries, with a salt of bytes 0 .. 15. */
function listingValues(): Values {
  const salt = Uint8Array.from({ length: 16 }, (_, i) => i);
  const entries: [string, Fingerprinted][] = [
    ["file", { kind: "file", path: "photos/a.jpg", size: 48213, mtime: 1717171717000 }],
    ["dir", { kind: "dir", path: "photos", mtime: 1717171700000, mode: 0o755 }],
    ["utf8", { kind: "file", path: "phötos/é.txt", size: 0, mtime: -1500.5 }],
  ];
  const out: Values = [["salt", salt]];
  for (const [name, entry] of entries) {
    out.push([`line_${name}`, fingerprintInput(salt, entry).subarray(salt.length)]);
    out.push([`fingerprint_${name}`, fingerprint((data) => sha256(data), salt, entry)]);
  }
  return out;
}

function defaultAds(): Map<string, [Uint8Array, Uint8Array]> {
  return new Map(SESSIONS.map(({ section, offer, choice }) => [
    section,
    [senderAd(offer), receiverAd(choice)],
  ]));
}

/**
 * The value blocks of PROTOCOL.md's Appendix A, by section ("A.1", ...): the
 * lines `name  hex` inside fenced blocks, continuation lines appended.
 */
function parseAppendix(markdown: string): Map<string, Map<string, string>> {
  const start = markdown.indexOf("\n## Appendix A.");
  assert(start >= 0, "PROTOCOL.md has an Appendix A");
  const sections = new Map<string, Map<string, string>>();
  let section: Map<string, string> | null = null;
  let inBlock = false;
  let last: string | null = null;
  for (const line of markdown.slice(start + 1).split("\n").slice(1)) {
    if (line.startsWith("## ")) break; // the next appendix
    const heading = /^### (A\.\d+)\b/.exec(line);
    if (heading) {
      section = new Map();
      sections.set(heading[1]!, section); // the regexes' groups are not optional
      continue;
    }
    if (line.startsWith("```")) {
      inBlock = !inBlock;
      last = null;
      continue;
    }
    if (!inBlock || section === null) continue;
    const value = /^([A-Za-z][\w]*)\s+([0-9a-f]+)$/.exec(line);
    const more = /^\s+([0-9a-f]+)$/.exec(line);
    if (value) {
      const name = value[1]!;
      assert(!section.has(name), `${name} twice in one section`);
      section.set(name, value[2]!);
      last = name;
    } else if (more && last !== null) {
      section.set(last, section.get(last)! + more[1]!); // last: a name set above
    } else {
      throw new Error(`a line of Appendix A that is not a value: ${JSON.stringify(line)}`);
    }
  }
  return sections;
}

// ---------------------------------------------------------------------------
// The tests

async function appendix(): Promise<Map<string, Map<string, string>>> {
  return parseAppendix(await Deno.readTextFile(PROTOCOL_MD));
}

Deno.test("Appendix A's inputs are what its text says they are", async () => {
  const doc = await appendix();
  const inputs = doc.get("A.1") ?? new Map<string, string>();
  // The code, normalized (§4.2), is the PRS; the preambles are version 1, channel 1.
  assertEquals(NORMALIZED, CODE, "the code is written normalized");
  assertEquals(inputs.get("PRS"), toHex(utf8(CODE)));
  for (const [name, hex] of inputValues(defaultInputs())) {
    assertEquals(inputs.get(name), toHex(hex), name);
  }
  for (const { section, offer, choice } of SESSIONS) {
    assertEquals(doc.get(section)?.get("ADa"), toHex(senderAd(offer)), `${section} ADa`);
    assertEquals(doc.get(section)?.get("ADb"), toHex(receiverAd(choice)), `${section} ADb`);
  }
});

Deno.test("every value of Appendix A follows from its inputs by ferry's code", async () => {
  const doc = await appendix();
  const given = (section: string, name: string) => {
    const hex = doc.get(section)?.get(name);
    if (hex === undefined) throw new Error(`Appendix ${section} gives no ${name}`);
    return fromHex(hex);
  };
  const inp: Inputs = {
    code: CODE,
    PRS: given("A.1", "PRS"),
    P_s: given("A.1", "P_s"),
    P_r: given("A.1", "P_r"),
    mode: given("A.1", "mode"),
    nonce_s: given("A.1", "nonce_s"),
    nonce_r: given("A.1", "nonce_r"),
    ya: given("A.1", "ya"),
    yb: given("A.1", "yb"),
  };
  const ads = new Map(SESSIONS.map(({ section }) => [
    section,
    [given(section, "ADa"), given(section, "ADb")] as [Uint8Array, Uint8Array],
  ]));
  const computed = computeAll(inp, ads);
  assertEquals([...doc.keys()], [...computed.keys()], "the appendix's sections");
  for (const [section, values] of computed) {
    const written = doc.get(section)!;
    // Every value written is checked, and every value computed is written.
    assertEquals([...written.keys()], values.map(([name]) => name), `the names of ${section}`);
    for (const [name, bytes] of values) {
      assertEquals(written.get(name), toHex(bytes), `${section} ${name}`);
    }
  }
});

Deno.test("Appendix A's records open with its record keys, by node:crypto alone", async () => {
  const doc = await appendix();
  for (const { section, choice } of SESSIONS) {
    const v = (name: string) => fromHex(doc.get(section)!.get(name)!);
    const cases: [string, string, number, number, Uint8Array][] = [
      ["record_c2s_0", "key_c2s_0", 0, 0, DATA_C2S],
      ["record_c2s_1", "key_c2s_0", 1, 1, new Uint8Array(0)],
      ["record_s2c_0", "key_s2c_0", 0, 0, DATA_S2C],
      ["record_s2c_1", "key_s2c_0", 1, 1, new Uint8Array(0)],
      ["record_c2s_65536", "key_c2s_1", EPOCH_RECORDS, 0, DATA_C2S],
    ];
    for (const [record, key, seq, type, payload] of cases) {
      // §4.5: length ‖ AEAD(key, nonce = 4 zero bytes ‖ u64 seq, aad = length, type ‖ payload).
      const nonce = new Uint8Array(12);
      new DataView(nonce.buffer).setBigUint64(4, BigInt(seq));
      const length = new Uint8Array(4);
      new DataView(length.buffer).setUint32(0, 1 + payload.length + 16);
      const cipher = choice === "aes-256-gcm"
        ? createCipheriv("aes-256-gcm", v(key), nonce, { authTagLength: 16 })
        : createCipheriv("chacha20-poly1305", v(key), nonce, { authTagLength: 16 });
      cipher.setAAD(length, { plaintextLength: 1 + payload.length });
      const body = new Uint8Array([
        ...cipher.update(new Uint8Array([type, ...payload])),
        ...cipher.final(),
        ...cipher.getAuthTag(),
      ]);
      assertEquals(toHex(v(record)), toHex(new Uint8Array([...length, ...body])), record);
    }
    // And ferry's opener reads the first two of each direction in order.
    for (const [direction, secret] of [["c2s", "k_c2s"], ["s2c", "k_s2c"]] as const) {
      const opener = new RecordOpener(v(secret), direction, { aead: defaultAead(choice) });
      assertEquals(
        opener.open(v(`record_${direction}_0`)),
        direction === "c2s" ? DATA_C2S : DATA_S2C,
      );
      assertEquals(opener.open(v(`record_${direction}_1`)), null, "the close record");
    }
  }
});

if (import.meta.main) {
  const values = computeAll(defaultInputs(), defaultAds());
  for (const [section, list] of values) console.log(`${section}\n${block(list)}\n`);
}
