/**
 * The FILE_END digests (src/protocol/digests.ts): known answers from the
 * reference implementations (`xxhsum -H2`, `sha256sum`), incremental
 * hashing across every kind of split, and xxh128's one shared WebAssembly
 * instance: hashers that interleave (two sessions' files) must not see each
 * other's state.
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import {
  type Digest,
  DIGEST_NAMES,
  digestHex,
  type DigestName,
  isDigestName,
  loadDigest,
  MANDATORY_DIGEST,
  PrefixHash,
} from "../src/protocol/digests.ts";
import { createHash } from "node:crypto";
import { type Libcrypto, loadLibcrypto } from "../src/native/libcrypto.ts";
import { opensslSha256 } from "../src/transport/sha256_openssl.ts";
import { type Libxxhash, LIBXXHASH_PATHS, loadLibxxhash } from "../src/native/libxxhash.ts";
import { nativeXxh128 } from "../src/transport/xxh128_native.ts";
import { presentFiles } from "./_libraries.ts";

const toHex = (bytes: Uint8Array) =>
  Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
const text = (s: string) => new TextEncoder().encode(s);

/** 100,000 bytes, byte i = (31 i + 7) mod 251: long enough for XXH3's long-input path. */
const PATTERN = Uint8Array.from({ length: 100_000 }, (_, i) => (i * 31 + 7) % 251);

/** An input and its digest in hex. */
type Known = [data: Uint8Array, hex: string];

/** Computed with xxhsum 0.8 (`xxhsum -H2`) and sha256sum: of "", "abc" and PATTERN. */
const KNOWN: Record<DigestName, [empty: Known, abc: Known, pattern: Known]> = {
  xxh128: [
    [text(""), "99aa06d3014798d86001c324468d497f"],
    [text("abc"), "06b05ab6733a618578af5f94892f3950"],
    [PATTERN, "bc2117116c93a45dddc565585fab0e61"],
  ],
  sha256: [
    [text(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"],
    [text("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"],
    [PATTERN, "08d042cceab8034d08c870e707f331cac9f42321044406bcccd156c7258229ab"],
  ],
};

Deno.test("DIGEST_NAMES lists xxh128 first (the default), then the mandatory sha256", () => {
  assertEquals([...DIGEST_NAMES], ["xxh128", "sha256"]);
  assertEquals(MANDATORY_DIGEST, "sha256");
  assertEquals(isDigestName("xxh128"), true);
  assertEquals(isDigestName("md5"), false);
  assertEquals(isDigestName("SHA256"), false);
});

for (const name of DIGEST_NAMES) {
  Deno.test(`${name}: of() and hasher() give the reference digests`, async () => {
    const digest = await loadDigest(name);
    for (const [data, hex] of KNOWN[name]) {
      assertEquals(toHex(digest.of(data)), hex);
      const hasher = digest.hasher();
      hasher.update(data);
      assertEquals(toHex(hasher.digest()), hex);
      assertEquals(digest.of(data).length, digest.length);
    }
  });

  Deno.test(`${name}: updates split anywhere give the same digest as one update`, async () => {
    const digest = await loadDigest(name);
    const whole = toHex(digest.of(PATTERN));
    // Splits around XXH3's 64-byte stripes, 1024-byte blocks and hash-wasm's 16 KiB copies.
    for (const step of [1, 63, 64, 65, 240, 1023, 1024, 16_383, 16_384, 16_385, 65_536]) {
      const hasher = digest.hasher();
      for (let at = 0; at < PATTERN.length; at += step) {
        hasher.update(PATTERN.subarray(at, at + step));
      }
      assertEquals(toHex(hasher.digest()), whole, `step ${step}`);
    }
  });

  Deno.test(`${name}: interleaved hashers keep their own state`, async () => {
    const digest = await loadDigest(name);
    const a = digest.hasher();
    const b = digest.hasher();
    const c = digest.hasher();
    const other = text("another file's bytes ").subarray();
    for (let at = 0; at < PATTERN.length; at += 7_000) {
      a.update(PATTERN.subarray(at, at + 7_000));
      b.update(other);
      // A one-shot digest in between (a small file of another session).
      assertEquals(toHex(digest.of(text("abc"))), KNOWN[name][1][1]);
    }
    c.update(text("abc"));
    assertEquals(toHex(a.digest()), KNOWN[name][2][1]);
    assertEquals(toHex(c.digest()), KNOWN[name][1][1]);
    const expectedB = digest.hasher();
    for (let at = 0; at < PATTERN.length; at += 7_000) expectedB.update(other);
    assertEquals(b.digest(), expectedB.digest());
  });
}

for (const name of DIGEST_NAMES) {
  Deno.test(`PrefixHash (${name}): the prefix's SHA-256 as proof, and a hasher that goes on`, async () => {
    const digest = await loadDigest(name);
    const sha256 = await loadDigest("sha256");
    const prefix = new PrefixHash(digest);
    prefix.update(PATTERN.subarray(0, 30_000));
    prefix.update(PATTERN.subarray(30_000, 40_000));
    const { hash, proof } = prefix.finish();
    assertEquals(proof, toHex(sha256.of(PATTERN.subarray(0, 40_000))));
    hash.update(PATTERN.subarray(40_000));
    assertEquals(toHex(hash.digest()), KNOWN[name][2][1]);
  });
}

Deno.test("xxh128: a hasher refuses to go on after digest()", async () => {
  const digest = await loadDigest("xxh128");
  const hasher = digest.hasher();
  hasher.update(text("abc"));
  hasher.digest();
  assertThrows(() => hasher.update(text("more")), Error, "after digest()");
  assertThrows(() => hasher.digest(), Error, "after digest()");
});

Deno.test("loadDigest() loads each digest once", async () => {
  assertEquals(await loadDigest("xxh128"), await loadDigest("xxh128"));
  assertEquals(await loadDigest("sha256"), await loadDigest("sha256"));
});

Deno.test("opensslSha256() gives node:crypto's SHA-256 at every length around a block edge", () => {
  const sha256 = opensslSha256();
  // The test task grants ffi for libcrypto; only a system without OpenSSL 3 has none.
  if (sha256 === null) return assertEquals(loadLibcrypto(), null);
  for (const n of [0, 1, 55, 56, 63, 64, 65, 4096, 1_048_579]) {
    const data = PATTERN.length >= n ? PATTERN.subarray(0, n) : new Uint8Array(n).fill(7);
    assertEquals(toHex(sha256(data)), createHash("sha256").update(data).digest("hex"), `${n}`);
  }
});

Deno.test("opensslSha256() refuses a library whose SHA-256 of 'abc' is wrong, and none", () => {
  const lib = loadLibcrypto();
  if (lib !== null) {
    const broken = { ...lib, EVP_Digest: () => 1 } as unknown as Libcrypto;
    assertEquals(opensslSha256(broken), null);
    assertEquals(typeof opensslSha256(lib), "function");
  }
  assertEquals(opensslSha256(null), null);
});

Deno.test("opensslSha256() hashes with a SHA-256 fetched once, else with EVP_sha256()", () => {
  const lib = loadLibcrypto();
  if (lib === null) return; // no OpenSSL 3 here: node:crypto's SHA-256 is used
  const abc = new TextEncoder().encode("abc");
  const expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  for (const fetches of [true, false]) {
    let fetched: Deno.PointerValue = null;
    let fetchCalls = 0;
    let legacy: Deno.PointerValue = null;
    const used: Deno.PointerValue[] = [];
    const recording = {
      ...lib,
      EVP_MD_fetch: (...args: Parameters<Libcrypto["EVP_MD_fetch"]>) => {
        fetchCalls++;
        fetched = fetches ? lib.EVP_MD_fetch(...args) : null;
        return fetched;
      },
      EVP_sha256: () => legacy = lib.EVP_sha256(),
      EVP_Digest: (...args: Parameters<Libcrypto["EVP_Digest"]>) => {
        used.push(args[4]);
        return lib.EVP_Digest(...args);
      },
    } as unknown as Libcrypto;
    const sha256 = opensslSha256(recording)!;
    for (let i = 0; i < 3; i++) assertEquals(digestHex(sha256(abc)), expected);
    // The handle given to every call: the fetched one, else EVP_sha256()'s (the same object).
    const md = fetches ? fetched : legacy;
    assert(md !== null);
    assertEquals(used.length, 4); // the known answer, then three
    assert(used.every((p) => p === md), String(fetches));
    assertEquals(fetchCalls, 1); // once, not per digest
  }
});

Deno.test("loadDigest('sha256', oneShot) hashes whole buffers with oneShot, and still hashes incrementally", async () => {
  const calls: number[] = [];
  const oneShot = (data: Uint8Array) => {
    calls.push(data.length);
    return new Uint8Array(createHash("sha256").update(data).digest());
  };
  const digest = await loadDigest("sha256", { sha256OneShot: oneShot });
  assertEquals(toHex(digest.of(text("abc"))), KNOWN.sha256[1][1]);
  assertEquals(calls, [3]);
  const hasher = digest.hasher();
  hasher.update(text("a"));
  hasher.update(text("bc"));
  assertEquals(toHex(hasher.digest()), KNOWN.sha256[1][1]);
  assertEquals(calls, [3], "the hasher is node:crypto's");
  // Without one, and for other digests, the usual engines.
  assertEquals(
    (await loadDigest("sha256", { sha256OneShot: null })).of,
    (await loadDigest("sha256")).of,
  );
  assertEquals(
    toHex((await loadDigest("xxh128", { sha256OneShot: oneShot })).of(text("abc"))),
    KNOWN.xxh128[1][1],
  );
  assertEquals(calls, [3]);
});

/** Whether this system has libxxhash at one of the paths ferry looks in. */
const hasLibxxhash = presentFiles(LIBXXHASH_PATHS).length > 0;

Deno.test({
  name: "nativeXxh128() loads wherever the system has libxxhash (the permission set covers it)",
  ignore: !hasLibxxhash,
  fn() {
    assertEquals(loadLibxxhash() !== null, true, "ffi permission for libxxhash is missing");
    assertEquals(nativeXxh128()?.name, "xxh128");
  },
});

Deno.test({
  name:
    "nativeXxh128() gives the WebAssembly build's XXH3-128 at every length, whole and in pieces",
  ignore: !hasLibxxhash,
  async fn() {
    const native = nativeXxh128()!;
    const wasm = await loadDigest("xxh128");
    for (const [data, hex] of KNOWN.xxh128) assertEquals(toHex(native.of(data)), hex);
    // XXH3's paths change at 16, 128 and 240 bytes, and at its 1,024-byte stripes' block.
    for (const n of [0, 1, 3, 4, 8, 9, 16, 17, 128, 129, 240, 241, 1024, 1025, 4096, 100_000]) {
      const data = PATTERN.subarray(0, n);
      const want = toHex(wasm.of(data));
      assertEquals(toHex(native.of(data)), want, `${n} whole`);
      for (const cut of [0, 1, n >> 1, n]) {
        const hasher = native.hasher();
        hasher.update(data.subarray(0, cut));
        hasher.update(data.subarray(cut));
        assertEquals(toHex(hasher.digest()), want, `${n} cut at ${cut}`);
      }
    }
  },
});

Deno.test({
  name: "nativeXxh128() hashers are independent, and each ends with its digest",
  ignore: !hasLibxxhash,
  fn() {
    const native = nativeXxh128()!;
    const a = native.hasher();
    const b = native.hasher();
    a.update(text("a"));
    b.update(PATTERN);
    a.update(text("bc"));
    assertEquals(toHex(a.digest()), KNOWN.xxh128[1][1]);
    assertEquals(toHex(b.digest()), KNOWN.xxh128[2][1]);
    // Its native state is freed: nothing may touch it again.
    assertThrows(() => a.update(text("x")));
    assertThrows(() => a.digest());
  },
});

Deno.test({
  name: "nativeXxh128() refuses a library that is older than 0.8 or gives a wrong answer, and none",
  ignore: !hasLibxxhash,
  fn() {
    const lib = loadLibxxhash()!;
    const old = { ...lib, XXH_versionNumber: () => 706 } as unknown as Libxxhash;
    const wrongWhole = {
      ...lib,
      XXH3_128bits: () => new Uint8Array(16),
      XXH3_128bits_dispatch: () => new Uint8Array(16),
    } as unknown as Libxxhash;
    const wrongInPieces = {
      ...lib,
      XXH3_128bits_digest: () => new Uint8Array(16),
    } as unknown as Libxxhash;
    assertEquals(nativeXxh128(old), null);
    assertEquals(nativeXxh128(wrongWhole), null);
    assertEquals(nativeXxh128(wrongInPieces), null);
    assertEquals(nativeXxh128(lib)?.name, "xxh128");
    assertEquals(nativeXxh128(null), null);
  },
});

Deno.test({
  name: "nativeXxh128() calls through the x86 dispatcher where it is, else the plain calls",
  ignore: !hasLibxxhash,
  fn() {
    const lib = loadLibxxhash()!;
    const calls: string[] = [];
    const counted = (over: Partial<Record<keyof Libxxhash, unknown>>) => {
      const spy = { ...lib, ...over } as Record<string, unknown>;
      for (
        const name of [
          "XXH3_128bits",
          "XXH3_128bits_update",
          "XXH3_128bits_dispatch",
          "XXH3_128bits_update_dispatch",
        ]
      ) {
        const call = spy[name] as ((...args: unknown[]) => unknown) | null;
        spy[name] = call === null ? null : (...args: unknown[]) => {
          calls.push(name);
          return call(...args);
        };
      }
      return spy as unknown as Libxxhash;
    };
    const use = (digest: Digest | null) => {
      calls.length = 0;
      assertEquals(toHex(digest!.of(PATTERN)), KNOWN.xxh128[2][1]);
      const hasher = digest!.hasher();
      hasher.update(PATTERN);
      assertEquals(toHex(hasher.digest()), KNOWN.xxh128[2][1]);
      return [...calls];
    };
    const plain = ["XXH3_128bits", "XXH3_128bits_update"];
    const dispatched = ["XXH3_128bits_dispatch", "XXH3_128bits_update_dispatch"];
    if (lib.XXH3_128bits_dispatch !== null && lib.XXH3_128bits_update_dispatch !== null) {
      assertEquals(use(nativeXxh128(counted({}))), dispatched);
    }
    // On any machine: a dispatcher that gives the right answers is used (here: the plain code).
    const good = {
      XXH3_128bits_dispatch: lib.XXH3_128bits,
      XXH3_128bits_update_dispatch: lib.XXH3_128bits_update,
    };
    assertEquals(use(nativeXxh128(counted(good))), dispatched);
    // A dispatcher that is wrong, even only past 240 bytes (its vector code), or whose calls fail,
    // is not used; the plain calls are.
    const wrong = { ...good, XXH3_128bits_dispatch: () => new Uint8Array(16) };
    assertEquals(use(nativeXxh128(counted(wrong))), plain);
    const wrongWhenLong = {
      ...good,
      XXH3_128bits_dispatch: (data: Uint8Array, length: bigint) =>
        length > 240n ? new Uint8Array(16) : lib.XXH3_128bits(data, length),
    };
    assertEquals(use(nativeXxh128(counted(wrongWhenLong))), plain);
    const wrongInLongPieces = {
      ...good,
      XXH3_128bits_update_dispatch: (state: Deno.PointerObject, data: Uint8Array, n: bigint) =>
        lib.XXH3_128bits_update(state, n > 512n ? data.subarray(1) : data, n > 512n ? n - 1n : n),
    };
    assertEquals(use(nativeXxh128(counted(wrongInLongPieces))), plain);
    const failing = { ...good, XXH3_128bits_update_dispatch: () => 1 };
    assertEquals(use(nativeXxh128(counted(failing))), plain);
    // Without the dispatcher (another build, another CPU architecture): the plain calls.
    const without = { XXH3_128bits_dispatch: null, XXH3_128bits_update_dispatch: null };
    assertEquals(use(nativeXxh128(counted(without))), plain);
    assertEquals(use(nativeXxh128(counted({ XXH3_128bits_update_dispatch: null }))), plain);
  },
});

Deno.test("loadDigest('xxh128', { xxh128 }) uses the native build given, else the WebAssembly", async () => {
  const given = { ...(await loadDigest("xxh128")) };
  assertEquals(await loadDigest("xxh128", { xxh128: given }), given);
  assertEquals(await loadDigest("xxh128", { xxh128: null }), await loadDigest("xxh128"));
});
