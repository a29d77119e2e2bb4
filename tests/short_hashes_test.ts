/**
 * The handshake's hashes (src/transport/short_hashes.ts) in both builds, and
 * HKDF over them (src/transport/hkdf.ts), against RFC 5869's vectors and
 * node:crypto.
 */
import { assertEquals, assertThrows } from "@std/assert";
import { createHash, createHmac, hkdfSync } from "node:crypto";
import { loadLibcrypto } from "../src/native/libcrypto.ts";
import { hkdfExpand, hkdfExtract } from "../src/transport/hkdf.ts";
import {
  loadShortHashes,
  opensslShortHashes,
  type ShortHashes,
  shortHashes,
} from "../src/transport/short_hashes.ts";
import { nobleShortHashes } from "../src/transport/short_hashes_noble.ts";

const openssl = opensslShortHashes(loadLibcrypto());
const BUILDS: ShortHashes[] = openssl === null ? [nobleShortHashes] : [nobleShortHashes, openssl];
const SKIPPED = openssl === null ? " (skipped: no libcrypto at LIBCRYPTO_PATHS here)" : "";

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const range = (from: number, to: number) =>
  Uint8Array.from({ length: to - from }, (_, i) => from + i);

Deno.test({
  name: `loadShortHashes() and shortHashes() give OpenSSL's build where libcrypto loads${SKIPPED}`,
  ignore: openssl === null,
  fn: async () => {
    const loaded = await loadShortHashes();
    assertEquals(loaded.name, "openssl");
    assertEquals(shortHashes(), loaded);
  },
});

Deno.test("opensslShortHashes() is null without the library", () => {
  assertEquals(opensslShortHashes(null), null);
});

Deno.test("opensslShortHashes() is null for a library that gives a wrong known answer", () => {
  const lib = loadLibcrypto();
  if (lib === null) return;
  const wrongDigest = {
    ...lib,
    EVP_Digest: (...args: Parameters<typeof lib.EVP_Digest>) => {
      const result = lib.EVP_Digest(...args);
      (args[2] as Uint8Array)[0]! ^= 1;
      return result;
    },
  };
  assertEquals(opensslShortHashes(wrongDigest), null);
  const wrongMac = { ...lib, EVP_Q_mac: () => null };
  assertEquals(opensslShortHashes(wrongMac), null);
});

for (const build of BUILDS) {
  Deno.test(`${build.name}: HMAC-SHA-256 of an empty key or an empty message is node:crypto's`, () => {
    const some = new TextEncoder().encode("some bytes");
    const empty = new Uint8Array(0);
    for (const [key, data] of [[empty, some], [some, empty], [empty, empty]]) {
      assertEquals(
        hex(build.hmacSha256(key!, data!)),
        createHmac("sha256", key!).update(data!).digest("hex"),
        `key ${key!.length}, data ${data!.length}`,
      );
    }
  });

  Deno.test(`${build.name}: SHA-256, SHA-512 and HMAC-SHA-256 are node:crypto's`, () => {
    for (let n = 0; n < 300; n += 7) {
      const data = crypto.getRandomValues(new Uint8Array(n));
      const key = crypto.getRandomValues(new Uint8Array((n * 13) % 150)); // past the 64-byte block
      assertEquals(hex(build.sha256(data)), createHash("sha256").update(data).digest("hex"));
      assertEquals(hex(build.sha512(data)), createHash("sha512").update(data).digest("hex"));
      assertEquals(
        hex(build.hmacSha256(key, data)),
        createHmac("sha256", key).update(data).digest("hex"),
        `key ${key.length}, data ${n}`,
      );
    }
  });
}

Deno.test("hkdfExtract() and hkdfExpand() give RFC 5869's A.1 and A.3", () => {
  const ikm = new Uint8Array(22).fill(0x0b);
  const prk = hkdfExtract(ikm, range(0x00, 0x0d));
  assertEquals(hex(prk), "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5");
  assertEquals(
    hex(hkdfExpand(prk, range(0xf0, 0xfa), 42)),
    "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
  );
  // A.3: salt and info empty; an empty salt is HashLen zeros, as an absent one.
  for (const salt of [new Uint8Array(0), undefined]) {
    const okm = hkdfExpand(hkdfExtract(ikm, salt), new Uint8Array(0), 42);
    assertEquals(
      hex(okm),
      "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
    );
  }
});

Deno.test("hkdfExpand() is node:crypto's HKDF at every length, up to 255 blocks", () => {
  const lengths = [0, 1, 31, 32, 33, 64, 82, 100, 255 * 32];
  for (const length of lengths) {
    const ikm = crypto.getRandomValues(new Uint8Array(80));
    const salt = crypto.getRandomValues(new Uint8Array(length % 90));
    const info = crypto.getRandomValues(new Uint8Array((length * 7) % 120));
    const ours = hkdfExpand(hkdfExtract(ikm, salt), info, length);
    const node = new Uint8Array(hkdfSync("sha256", ikm, salt, info, length));
    assertEquals(hex(ours), hex(node), `length ${length}`);
  }
  assertThrows(() => hkdfExpand(new Uint8Array(32), new Uint8Array(0), 255 * 32 + 1), RangeError);
  assertThrows(() => hkdfExpand(new Uint8Array(32), new Uint8Array(0), -1), RangeError);
});
