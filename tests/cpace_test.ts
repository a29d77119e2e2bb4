/**
 * CPace (src/transport/cpace.ts) and the key schedule (src/transport/key_schedule.ts).
 *
 * The vectors are copied from draft-irtf-cfrg-cpace-21 (23 April 2026), Appendix A
 * (string utilities) and Appendix B.3 ("Test vector for CPace using group ristretto255
 * and hash SHA-512"); the B.3 values are identical in draft-irtf-cfrg-cpace-20.
 */
import { assert, assertEquals, assertNotEquals, assertThrows } from "@std/assert";
import { createHash, createHmac, hkdfSync } from "node:crypto";
import {
  calculateGenerator,
  CPACE_DSI,
  CPACE_ISK_BYTES,
  cpaceAbandon,
  CpaceError,
  cpaceFinish,
  type CpaceOutput,
  type CpaceRole,
  cpaceStart,
  generatorString,
  isValidShare,
  lvCat,
  prependLen,
  scalarMultVfy,
  transcriptIr,
} from "../src/transport/cpace.ts";
import {
  deriveSessionKeys,
  ownConfirmation,
  trafficKeys,
  transcriptHash,
  verifyPeerConfirmation,
} from "../src/transport/key_schedule.ts";

import { nobleRistretto255 } from "../src/transport/ristretto255_noble.ts";
import { recordingGroup } from "./_recording_group.ts";
import { sodiumRistretto255 } from "../src/transport/ristretto255_sodium.ts";
import type { Ristretto255 } from "../src/transport/ristretto255.ts";
import { loadShortHashes } from "../src/transport/short_hashes.ts";

// The handshake's hashes where no OpenSSL loads (@noble/hashes) are imported by this first.
await loadShortHashes();

/** libsodium's build where it loads (the test task grants ffi for it), and @noble/curves'. */
const sodium = sodiumRistretto255();
const GROUPS: Ristretto255[] = sodium === null ? [nobleRistretto255] : [nobleRistretto255, sodium];
/** The build the running test uses (groupTest sets it; tests in a file run one at a time). */
let group: Ristretto255 = nobleRistretto255;

/** `fn` as one test per build of the group. */
function groupTest(name: string, fn: () => void): void {
  for (const build of GROUPS) {
    Deno.test(`${name} [${build.name}]`, () => {
      group = build;
      fn();
    });
  }
}

function hex(s: string): Uint8Array {
  const clean = s.replace(/\s+/g, "");
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

const utf8 = (s: string) => new TextEncoder().encode(s);
const range = (n: number) => Uint8Array.from({ length: n }, (_, i) => i);

// Appendix B.3.1 inputs.
const TV = {
  prs: utf8("Password"),
  ci: hex("0b415f696e69746961746f720b425f726573706f6e646572"),
  sid: hex("7e4b4791d6a8ef019b936c79fb7f2c57"),
  // B.3.1 outputs
  generatorString: hex(`
    11435061636552697374726574746f3235350850617373776f726464
    00000000000000000000000000000000000000000000000000000000
    00000000000000000000000000000000000000000000000000000000
    00000000000000000000000000000000000000000000000000000000
    00000000000000000000000000000000180b415f696e69746961746f
    720b425f726573706f6e646572107e4b4791d6a8ef019b936c79fb7f
    2c57`),
  g: hex("222b6b195fe84b1652badb6f6a3ae3d24341e7306967f0b8115b40d5698c7e56"),
  // B.3.2
  ada: utf8("ADa"),
  ya: hex("da3d23700a9e5699258aef94dc060dfda5ebb61f02a5ea77fad53f4ff0976d08"),
  Ya: hex("d6bac480f2c386c394efc7c47adb9925dcd2630b64f240c50f8d0eec482b9157"),
  // B.3.3
  adb: utf8("ADb"),
  yb: hex("d2316b454718c35362d83d69df6320f38578ed5984651435e2949762d900b80d"),
  Yb: hex("3ea7e0b19560d7c0b0f5734f63b955286dfa8232b5ebe63324e2d9e7433f7258"),
  // B.3.4
  K: hex("80b69a8a76457ab6a4d7f887a4bf6b55a2f80ac19c333f917a05fc9887c8b40f"),
  // B.3.5
  transcriptIr: hex(`
    20d6bac480f2c386c394efc7c47adb9925dcd2630b64f240c50f8d0e
    ec482b915703414461203ea7e0b19560d7c0b0f5734f63b955286dfa
    8232b5ebe63324e2d9e7433f725803414462`),
  iskIr: hex(`
    b69effbf61b51d56401c0f65601abe428de8206feaaf0e32198896dc
    ae7b35cd2b38950a39dfd5d4a79164614c2984f7daa460b588c1e80c
    3fa2068af7900447`),
  // B.3.10
  s: hex("7cd0e075fa7955ba52c02759a6c90dbbfc10e6d40aea8d283e407d88cf538a05"),
  X: hex("2c3c6b8c4f3800e7aef6864025b4ed79bd599117e427c41bd47d93d654b4a51c"),
  sX: hex("7c13645fe790a468f62c39beb7388e541d8405d1ade69d1778c5fe3e7f6b600e"),
  // B.3.11
  Yi1: hex("2b3c6b8c4f3800e7aef6864025b4ed79bd599117e427c41bd47d93d654b4a51c"),
  Yi2: new Uint8Array(32),
};

const IDENTITY = new Uint8Array(32);

// ---------------------------------------------------------------------------
// Appendix A: string utilities

Deno.test("prependLen() matches draft-irtf-cfrg-cpace-21 Appendix A.1.2", () => {
  assertEquals(toHex(prependLen(new Uint8Array(0))), "00");
  assertEquals(toHex(prependLen(utf8("1234"))), "0431323334");
  assertEquals(toHex(prependLen(range(127))), "7f" + toHex(range(127)));
  assertEquals(toHex(prependLen(range(128))), "8001" + toHex(range(128)));
  // LEB128 beyond two bytes: 2^14 = 0x80 0x80 0x01.
  assertEquals(toHex(prependLen(new Uint8Array(16384)).subarray(0, 3)), "808001");
});

Deno.test("lvCat() matches draft-irtf-cfrg-cpace-21 Appendix A.1.4", () => {
  assertEquals(
    toHex(lvCat(utf8("1234"), utf8("5"), new Uint8Array(0), utf8("678"))),
    "043132333401350003363738",
  );
});

Deno.test("transcriptIr() matches draft-irtf-cfrg-cpace-21 Appendix A.3.5", () => {
  assertEquals(
    toHex(transcriptIr(utf8("123"), utf8("PartyA"), utf8("234"), utf8("PartyB"))),
    "03313233065061727479410332333406506172747942",
  );
  assertEquals(
    toHex(transcriptIr(utf8("3456"), utf8("PartyA"), utf8("2345"), utf8("PartyB"))),
    "043334353606506172747941043233343506506172747942",
  );
});

// ---------------------------------------------------------------------------
// Appendix B.3: CPACE-RISTR255-SHA512

Deno.test("generatorString() matches the B.3.1 generator string (ZPAD length 100)", () => {
  const s = generatorString(CPACE_DSI, TV.prs, TV.ci, TV.sid, 128);
  assertEquals(s.length, 170);
  assertEquals(toHex(s), toHex(TV.generatorString));
});

groupTest("calculateGenerator() matches the B.3.1 encoded generator g", () => {
  assertEquals(toHex(calculateGenerator(TV.prs, TV.ci, TV.sid, group)), toHex(TV.g));
});

groupTest("cpaceStart() produces Ya and Yb of B.3.2 and B.3.3 from the given scalars", () => {
  const a = cpaceStart({ group, ...TV, ad: TV.ada, role: "initiator", scalar: TV.ya });
  const b = cpaceStart({ group, ...TV, ad: TV.adb, role: "responder", scalar: TV.yb });
  assertEquals(toHex(a.message), toHex(TV.Ya));
  assertEquals(toHex(b.message), toHex(TV.Yb));
});

groupTest("scalarMultVfy() gives the B.3.4 shared point K on both sides", () => {
  assertEquals(toHex(scalarMultVfy(TV.ya, TV.Yb, group)), toHex(TV.K));
  assertEquals(toHex(scalarMultVfy(TV.yb, TV.Ya, group)), toHex(TV.K));
});

Deno.test("transcriptIr() gives the B.3.5 transcript", () => {
  assertEquals(toHex(transcriptIr(TV.Ya, TV.ada, TV.Yb, TV.adb)), toHex(TV.transcriptIr));
});

groupTest("cpaceFinish() gives the B.3.5 initiator/responder ISK on both sides", () => {
  const a = cpaceStart({ group, ...TV, ad: TV.ada, role: "initiator", scalar: TV.ya });
  const b = cpaceStart({ group, ...TV, ad: TV.adb, role: "responder", scalar: TV.yb });
  const outA = cpaceFinish(a.state, b.message, TV.adb);
  const outB = cpaceFinish(b.state, a.message, TV.ada);
  assertEquals(outA.isk.length, CPACE_ISK_BYTES);
  assertEquals(toHex(outA.isk), toHex(TV.iskIr));
  assertEquals(toHex(outB.isk), toHex(TV.iskIr));
  // Both sides report the transcript in initiator-then-responder order.
  for (const out of [outA, outB]) {
    assertEquals(toHex(out.ya), toHex(TV.Ya));
    assertEquals(toHex(out.ada), toHex(TV.ada));
    assertEquals(toHex(out.yb), toHex(TV.Yb));
    assertEquals(toHex(out.adb), toHex(TV.adb));
    assertEquals(toHex(out.sid), toHex(TV.sid));
  }
});

groupTest("scalarMultVfy() matches the B.3.10 valid-input case", () => {
  assertEquals(toHex(scalarMultVfy(TV.s, TV.X, group)), toHex(TV.sX));
});

groupTest("scalarMultVfy() returns the identity for the B.3.11 invalid inputs", () => {
  assertEquals(scalarMultVfy(TV.s, TV.Yi1, group), IDENTITY);
  assertEquals(scalarMultVfy(TV.s, TV.Yi2, group), IDENTITY);
});

// ---------------------------------------------------------------------------
// Abort conditions (draft §7.2, §8.3.1, §9)

function startPair(prsA: Uint8Array = TV.prs, prsB: Uint8Array = TV.prs) {
  const a = cpaceStart({ group, prs: prsA, ci: TV.ci, sid: TV.sid, ad: TV.ada, role: "initiator" });
  const b = cpaceStart({ group, prs: prsB, ci: TV.ci, sid: TV.sid, ad: TV.adb, role: "responder" });
  return { a, b };
}

function assertAborts(peerMessage: Uint8Array) {
  for (const role of ["initiator", "responder"] as CpaceRole[]) {
    const { state } = cpaceStart({ group, prs: TV.prs, ci: TV.ci, sid: TV.sid, ad: TV.ada, role });
    assertThrows(() => cpaceFinish(state, peerMessage, TV.adb), CpaceError);
  }
}

groupTest("cpaceFinish() rejects the identity point (B.3.11 Y_i2)", () => {
  assertAborts(TV.Yi2);
});

groupTest("cpaceFinish() rejects a non-canonical encoding (B.3.11 Y_i1)", () => {
  assertAborts(TV.Yi1);
});

groupTest("cpaceFinish() rejects garbage bytes that do not decode", () => {
  assertAborts(new Uint8Array(32).fill(0xff));
  // Odd s (RFC 9496 §4.3.1 step 3) and s >= p (step 1).
  assertAborts(Uint8Array.from({ length: 32 }, (_, i) => (i === 0 ? 1 : 0)));
  assertAborts(hex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"));
});

groupTest("cpaceFinish() rejects shares of the wrong length", () => {
  assertAborts(new Uint8Array(0));
  assertAborts(TV.Yb.subarray(0, 31));
  const long = new Uint8Array(33);
  long.set(TV.Yb);
  assertAborts(long);
});

groupTest("cpaceFinish() refuses to reuse a state", () => {
  const { a, b } = startPair();
  cpaceFinish(a.state, b.message, TV.adb);
  assertThrows(() => cpaceFinish(a.state, b.message, TV.adb), CpaceError, "already used");
});

groupTest("cpaceFinish() consumes the state even when the peer share is invalid", () => {
  const { a, b } = startPair();
  assertThrows(() => cpaceFinish(a.state, IDENTITY, TV.adb), CpaceError);
  assertThrows(() => cpaceFinish(a.state, b.message, TV.adb), CpaceError, "already used");
});

groupTest("cpaceStart() rejects out-of-range test scalars", () => {
  const base = { prs: TV.prs, ci: TV.ci, sid: TV.sid, ad: TV.ada, role: "initiator" as const };
  assertThrows(() => cpaceStart({ group, ...base, scalar: new Uint8Array(32) }), CpaceError);
  assertThrows(
    () => cpaceStart({ group, ...base, scalar: new Uint8Array(32).fill(0xff) }),
    CpaceError,
  );
  assertThrows(
    () => cpaceStart({ group, ...base, scalar: new Uint8Array(31).fill(1) }),
    CpaceError,
  );
});

// ---------------------------------------------------------------------------
// Full runs and the key schedule

function run(prsA: Uint8Array, prsB: Uint8Array): { a: CpaceOutput; b: CpaceOutput } {
  const { a, b } = startPair(prsA, prsB);
  return { a: cpaceFinish(a.state, b.message, TV.adb), b: cpaceFinish(b.state, a.message, TV.ada) };
}

groupTest("cpaceStart() samples a fresh scalar each run", () => {
  const x = startPair();
  const y = startPair();
  assertNotEquals(toHex(x.a.message), toHex(y.a.message));
  assertNotEquals(toHex(x.a.message), toHex(x.b.message));
});

groupTest("an initiator and a responder with the same code agree on keys and confirm", () => {
  const code = utf8("7-crane-lotus-oyster");
  const { a, b } = run(code, code);
  assertEquals(a.isk, b.isk);
  const ka = deriveSessionKeys(a);
  const kb = deriveSessionKeys(b);
  assertEquals(ka, kb);
  assertEquals(ka.c2s.length, 32);
  assertEquals(ka.s2c.length, 32);
  assertNotEquals(toHex(ka.c2s), toHex(ka.s2c));
  assertNotEquals(toHex(ka.initiatorConfirmation), toHex(ka.responderConfirmation));
  assert(verifyPeerConfirmation(ka, "initiator", ownConfirmation(kb, "responder")));
  assert(verifyPeerConfirmation(kb, "responder", ownConfirmation(ka, "initiator")));
  assertEquals(trafficKeys(ka, "initiator").send, trafficKeys(kb, "responder").receive);
  assertEquals(trafficKeys(ka, "initiator").receive, trafficKeys(kb, "responder").send);
});

groupTest("a wrong code gives different keys and fails confirmation on both sides", () => {
  const { a, b } = run(utf8("7-crane-lotus-oyster"), utf8("7-crane-lotus-oysters"));
  assertNotEquals(toHex(a.isk), toHex(b.isk));
  const ka = deriveSessionKeys(a);
  const kb = deriveSessionKeys(b);
  assertNotEquals(toHex(ka.c2s), toHex(kb.c2s));
  assertNotEquals(toHex(ka.s2c), toHex(kb.s2c));
  assert(!verifyPeerConfirmation(ka, "initiator", ownConfirmation(kb, "responder")));
  assert(!verifyPeerConfirmation(kb, "responder", ownConfirmation(ka, "initiator")));
  // The transcript is public and still agrees: only the secret differs.
  assertEquals(ka.transcriptHash, kb.transcriptHash);
});

groupTest("verifyPeerConfirmation() rejects reflected, truncated and empty tags", () => {
  const code = utf8("7-crane-lotus-oyster");
  const { a } = run(code, code);
  const k = deriveSessionKeys(a);
  // The initiator's own tag echoed back is not the responder's tag.
  assert(!verifyPeerConfirmation(k, "initiator", ownConfirmation(k, "initiator")));
  assert(!verifyPeerConfirmation(k, "responder", ownConfirmation(k, "responder")));
  assert(!verifyPeerConfirmation(k, "initiator", k.responderConfirmation.subarray(0, 31)));
  assert(!verifyPeerConfirmation(k, "initiator", new Uint8Array(0)));
});

groupTest("a different CI, sid or AD gives a different ISK", () => {
  const base = { prs: TV.prs, ci: TV.ci, sid: TV.sid };
  const other = [
    { ci: utf8("other channel") },
    { sid: hex("00000000000000000000000000000000") },
  ];
  for (const change of other) {
    const a = cpaceStart({ group, ...base, ad: TV.ada, role: "initiator" });
    const b = cpaceStart({ group, ...base, ...change, ad: TV.adb, role: "responder" });
    const isk = cpaceFinish(a.state, b.message, TV.adb).isk;
    assertNotEquals(toHex(isk), toHex(cpaceFinish(b.state, a.message, TV.ada).isk));
  }
  // An AD changed in transit: each side binds what it saw.
  const a = cpaceStart({ group, ...base, ad: TV.ada, role: "initiator" });
  const b = cpaceStart({ group, ...base, ad: TV.adb, role: "responder" });
  const iskA = cpaceFinish(a.state, b.message, utf8("ADb'")).isk;
  assertNotEquals(toHex(iskA), toHex(cpaceFinish(b.state, a.message, TV.ada).isk));
});

groupTest("deriveSessionKeys() binds the transcript: same ISK, other AD, other keys", () => {
  const code = utf8("7-crane-lotus-oyster");
  const { a } = run(code, code);
  const tampered = { ...a, adb: utf8("something else") };
  assertNotEquals(toHex(transcriptHash(a)), toHex(transcriptHash(tampered)));
  assertNotEquals(toHex(deriveSessionKeys(a).c2s), toHex(deriveSessionKeys(tampered).c2s));
});

groupTest("deriveSessionKeys() follows the documented formulas (checked with node:crypto)", () => {
  const code = utf8("7-crane-lotus-oyster");
  const { a } = run(code, code);
  const th = createHash("sha256")
    .update(lvCat(utf8("ferry/1 transcript"), a.sid, a.ya, a.ada, a.yb, a.adb))
    .digest();
  const expand = (label: string) =>
    new Uint8Array(hkdfSync("sha256", a.isk, new Uint8Array(0), lvCat(utf8(label), th), 32));
  const tag = (label: string) => createHmac("sha256", expand(label)).update(th).digest();
  const k = deriveSessionKeys(a);
  assertEquals(toHex(k.transcriptHash), th.toString("hex"));
  assertEquals(toHex(k.c2s), toHex(expand("ferry/1 key c2s")));
  assertEquals(toHex(k.s2c), toHex(expand("ferry/1 key s2c")));
  assertEquals(toHex(k.initiatorConfirmation), tag("ferry/1 confirm initiator").toString("hex"));
  assertEquals(toHex(k.responderConfirmation), tag("ferry/1 confirm responder").toString("hex"));
});

// ---------------------------------------------------------------------------
// Which shares are refused: RFC 9496 §4.3.1, class by class (PROTOCOL.md §4.3)

const P = 2n ** 255n - 19n;
const mod = (a: bigint) => ((a % P) + P) % P;
function pow(b: bigint, e: bigint): bigint {
  let r = 1n;
  b = mod(b);
  for (; e > 0n; e >>= 1n, b = mod(b * b)) if (e & 1n) r = mod(r * b);
  return r;
}
const isNegative = (x: bigint) => (mod(x) & 1n) === 1n;
const abs = (x: bigint) => (isNegative(x) ? mod(-x) : mod(x));
const D = mod(-121665n * pow(121666n, P - 2n));
const SQRT_M1 = abs(pow(2n, (P - 1n) / 4n));

/** SQRT_RATIO_M1 (RFC 9496 §4.2). */
function sqrtRatioM1(u: bigint, v: bigint): [boolean, bigint] {
  const v3 = mod(v * v * v);
  let r = mod(u * v3 * pow(u * v3 * v3 * v, (P - 5n) / 8n));
  const check = mod(v * r * r);
  const correct = check === mod(u);
  const flipped = check === mod(-u);
  const flippedI = check === mod(-u * SQRT_M1);
  if (flipped || flippedI) r = mod(r * SQRT_M1);
  return [correct || flipped, abs(r)];
}

type DecodeResult =
  | "ok"
  | "non-canonical"
  | "negative"
  | "non-square"
  | "negative xy"
  | "y = 0";

/**
 * RFC 9496 §4.3.1 decode, written out on its own (not @noble/curves): which
 * check, if any, refuses `bytes`.
 */
function rfcDecode(bytes: Uint8Array): DecodeResult {
  let s = 0n;
  for (let i = 31; i >= 0; i--) s = (s << 8n) | BigInt(bytes[i]!);
  if (s >= P) return "non-canonical"; // bit 255 set, or 2^255 - 19 <= s < 2^255
  if (isNegative(s)) return "negative";
  const ss = mod(s * s);
  const u1 = mod(1n - ss);
  const u2 = mod(1n + ss);
  const u2Sqr = mod(u2 * u2);
  const v = mod(-(D * u1 * u1) - u2Sqr);
  const [wasSquare, invsqrt] = sqrtRatioM1(1n, mod(v * u2Sqr));
  const denX = mod(invsqrt * u2);
  const denY = mod(invsqrt * denX * v);
  const x = abs(2n * s * denX);
  const y = mod(u1 * denY);
  const t = mod(x * y);
  if (!wasSquare) return "non-square";
  if (isNegative(t)) return "negative xy";
  if (y === 0n) return "y = 0";
  return "ok";
}

/** RFC 9496 Appendix A.2, the invalid encodings, by the check that refuses them. */
const BAD_ENCODINGS: Record<Exclude<DecodeResult, "ok">, string[]> = {
  "non-canonical": [
    "00ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "f3ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  ],
  "negative": [
    "0100000000000000000000000000000000000000000000000000000000000000",
    "01ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "ed57ffd8c914fb201471d1c3d245ce3c746fcbe63a3679d51b6a516ebebe0e20",
    "c34c4e1826e5d403b78e246e88aa051c36ccf0aafebffe137d148a2bf9104562",
    "c940e5a4404157cfb1628b108db051a8d439e1a421394ec4ebccb9ec92a8ac78",
    "47cfc5497c53dc8e61c91d17fd626ffb1c49e2bca94eed052281b510b1117a24",
    "f1c6165d33367351b0da8f6e4511010c68174a03b6581212c71c0e1d026c3c72",
    "87260f7a2f12495118360f02c26a470f450dadf34a413d21042b43b9d93e1309",
  ],
  "non-square": [
    "26948d35ca62e643e26a83177332e6b6afeb9d08e4268b650f1f5bbd8d81d371",
    "4eac077a713c57b4f4397629a4145982c661f48044dd3f96427d40b147d9742f",
    "de6a7b00deadc788eb6b6c8d20c0ae96c2f2019078fa604fee5b87d6e989ad7b",
    "bcab477be20861e01e4a0e295284146a510150d9817763caf1a6f4b422d67042",
    "2a292df7e32cababbd9de088d1d1abec9fc0440f637ed2fba145094dc14bea08",
    "f4a9e534fc0d216c44b218fa0c42d99635a0127ee2e53c712f70609649fdff22",
    "8268436f8c4126196cf64b3c7ddbda90746a378625f9813dd9b8457077256731",
    "2810e5cbc2cc4d4eece54f61c6f69758e289aa7ab440b3cbeaa21995c2f4232b",
  ],
  "negative xy": [
    "3eb858e78f5a7254d8c9731174a94f76755fd3941c0ac93735c07ba14579630e",
    "a45fdc55c76448c049a1ab33f17023edfb2be3581e9c7aade8a6125215e04220",
    "d483fe813c6ba647ebbfd3ec41adca1c6130c2beeee9d9bf065c8d151c5f396e",
    "8a2e1d30050198c65a54483123960ccc38aef6848e1ec8f5f780e8523769ba32",
    "32888462f8b486c68ad7dd9610be5192bbeaf3b443951ac1a8118419d9fa097b",
    "227142501b9d4355ccba290404bde41575b037693cef1f438c47f8fbf35d1165",
    "5c37cc491da847cfeb9281d407efc41e15144c876e0170b499a96a22ed31e01e",
    "445425117cb8c90edcbc7c1cc0e74f747f2c1efa5630a967c64f287792a48a4b",
  ],
  // s = -1
  "y = 0": ["ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"],
};

/** RFC 9496 Appendix A.1: encodings of B, 2B and 3B (valid, not the identity). */
const MULTIPLES_OF_B = [
  "e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76",
  "6a493210f7499cd17fecb510ae0cea23a110e8d5b901f8acadd3095c73a3b919",
  "94741f5d5d52755ece4f23f044ee27d5d1ea1e2bd196b462166b16152a9d0259",
];

Deno.test("the reference decoder sorts RFC 9496's invalid encodings into their classes", () => {
  assertEquals(SQRT_M1 * SQRT_M1 % P, P - 1n);
  for (const [why, list] of Object.entries(BAD_ENCODINGS)) {
    for (const encoding of list) assertEquals(rfcDecode(hex(encoding)), why, encoding);
  }
  for (const encoding of [...MULTIPLES_OF_B, toHex(IDENTITY)]) {
    assertEquals(rfcDecode(hex(encoding)), "ok", encoding);
  }
});

groupTest("cpaceFinish() refuses every class of RFC 9496 §4.3.1 invalid encoding", () => {
  for (const [why, list] of Object.entries(BAD_ENCODINGS)) {
    for (const encoding of list) {
      assertEquals(scalarMultVfy(TV.s, hex(encoding), group), IDENTITY, `${why}: ${encoding}`);
      assertAborts(hex(encoding));
    }
  }
});

groupTest("cpaceFinish() refuses a valid element's aliases: bit 255 set, or s + p", () => {
  // Decoders that ignore bit 255 (libsodium 1.0.18's ristretto255_frombytes among them)
  // take each of these as B, 2B, 3B; RFC 9496 and ferry refuse them.
  for (const encoding of MULTIPLES_OF_B) {
    const alias = hex(encoding);
    alias[31]! |= 0x80;
    assertEquals(rfcDecode(alias), "non-canonical");
    assertAborts(alias);
    // The original is fine: only the alias is refused.
    const { state } = cpaceStart({
      group,
      prs: TV.prs,
      ci: TV.ci,
      sid: TV.sid,
      ad: TV.ada,
      role: "initiator",
    });
    cpaceFinish(state, hex(encoding), TV.adb);
  }
  // s + p for s < 19: the only values of the field with two encodings below 2^255. s = 0 gives
  // the identity's alias, edff...7f (listed above); the others are refused as s >= p too.
  for (let s = 0; s < 19; s++) {
    const alias = hex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f");
    alias[0]! += s;
    assertEquals(rfcDecode(alias), "non-canonical");
    assertAborts(alias);
  }
});

groupTest("cpaceFinish() refuses the identity, which decodes (s = 0)", () => {
  assertEquals(rfcDecode(IDENTITY), "ok");
  assertAborts(IDENTITY);
});

groupTest(
  "cpaceFinish() takes exactly the shares the reference decoder takes (random input)",
  () => {
    const bytes = new Uint8Array(32);
    let accepted = 0;
    for (let i = 0; i < 3000; i++) {
      crypto.getRandomValues(bytes);
      bytes[31]! &= i % 3 === 0 ? 0xff : 0x7f; // a third with bit 255 possibly set
      if (i % 2 === 0) bytes[0]! &= 0xfe; // half of them even, so the later checks are reached
      const ok = rfcDecode(bytes) === "ok" && bytes.some((b) => b !== 0);
      const vfy = scalarMultVfy(TV.s, bytes, group);
      assertEquals(vfy.some((b) => b !== 0), ok, toHex(bytes));
      if (ok) accepted++;
    }
    assert(accepted > 100, `only ${accepted} random encodings decoded`);
  },
);

groupTest(
  "isValidShare() takes exactly what the reference decoder takes, less the identity",
  () => {
    for (const list of Object.values(BAD_ENCODINGS)) {
      for (const encoding of list) {
        assertEquals(
          isValidShare(hex(encoding), group),
          false,
          encoding,
        );
      }
    }
    for (const encoding of MULTIPLES_OF_B) {
      assertEquals(
        isValidShare(hex(encoding), group),
        true,
        encoding,
      );
    }
    assertEquals(isValidShare(IDENTITY, group), false);
    assertEquals(isValidShare(new Uint8Array(31), group), false);
    const bytes = new Uint8Array(32);
    for (let i = 0; i < 3000; i++) {
      crypto.getRandomValues(bytes);
      bytes[31]! &= i % 3 === 0 ? 0xff : 0x7f;
      if (i % 2 === 0) bytes[0]! &= 0xfe;
      const ok = rfcDecode(bytes) === "ok" && bytes.some((b) => b !== 0);
      assertEquals(isValidShare(bytes, group), ok, toHex(bytes));
      assertEquals(scalarMultVfy(TV.s, bytes, group).some((b) => b !== 0), ok, toHex(bytes));
    }
  },
);

Deno.test("cpaceFinish() and cpaceAbandon() wipe the scalar, whether the run succeeds or not", () => {
  const handed: Uint8Array[] = [];
  const recording = recordingGroup(handed);
  const start = (role: CpaceRole) =>
    cpaceStart({ group: recording, prs: TV.prs, ci: TV.ci, sid: TV.sid, ad: TV.ada, role });
  const a = start("initiator");
  const b = start("responder");
  cpaceFinish(a.state, b.message, TV.adb);
  cpaceFinish(b.state, a.message, TV.ada);
  assertThrows(() => cpaceFinish(start("initiator").state, IDENTITY, TV.adb), CpaceError);
  assertThrows(() => cpaceFinish(start("initiator").state, TV.Yb.subarray(1), TV.adb), CpaceError);
  const left = start("initiator");
  cpaceAbandon(left.state);
  assertThrows(() => cpaceFinish(left.state, b.message, TV.adb), CpaceError, "already used");
  assertEquals(handed.length, 8);
  for (const y of handed) assert(y.every((byte) => byte === 0), "a scalar left in memory");
});
