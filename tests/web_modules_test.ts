/**
 * The browser modules of `serve --web` (src/web/*_browser.ts), run in Deno:
 * each gives the same bytes as the module it replaces in the page's build,
 * and the page's record layer talks to the receiver's.
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import { createHash as nodeHash } from "node:crypto";
import { defaultAead as browserAead, fastSuites, nobleChacha } from "../src/web/aead_browser.ts";
import { createHash, nodeCrypto } from "../src/web/node_crypto_browser.ts";
import { loadRistretto255 as browserRistretto255 } from "../src/web/ristretto255_load_browser.ts";
import * as browserHashes from "../src/web/short_hashes_browser.ts";
import * as shortHashes from "../src/transport/short_hashes.ts";
import { defaultAead, passesKnownAnswer } from "../src/transport/aead.ts";
import { RecordOpener, RecordSealer } from "../src/transport/record_layer.ts";
import { randomBytes } from "./_random.ts";

Deno.test("the page's ChaCha20-Poly1305 passes RFC 8439's vector and opens the receiver's records", () => {
  assert(passesKnownAnswer(nobleChacha));
  assertEquals(fastSuites(), ["chacha20-poly1305"]);
  assertEquals(browserAead("chacha20-poly1305").engine, "@noble/ciphers");
  assertThrows(() => browserAead("aes-256-gcm"));
  const secret = randomBytes(32);
  const receiver = defaultAead("chacha20-poly1305");
  for (const [from, to] of [[nobleChacha, receiver], [receiver, nobleChacha]] as const) {
    const sealer = new RecordSealer(secret, "c2s", { aead: from });
    const opener = new RecordOpener(secret, "c2s", { aead: to });
    for (const size of [0, 1, 1000, 1024 * 1024]) {
      const data = randomBytes(size);
      const out = new Uint8Array(size);
      assertEquals(opener.openInto(sealer.seal(data), out), size);
      assertEquals(out, data);
    }
    const tampered = sealer.seal(randomBytes(10));
    tampered[6]! ^= 1;
    assertThrows(() => opener.open(tampered));
  }
});

Deno.test("the page's node:crypto stand-in hashes as node:crypto does", () => {
  const data = randomBytes(100_000);
  const hash = createHash("sha256").update(data.subarray(0, 777));
  const copy = hash.copy();
  hash.update(data.subarray(777));
  assertEquals(hash.digest(), new Uint8Array(nodeHash("sha256").update(data).digest()));
  assertEquals(copy.digest("hex"), nodeHash("sha256").update(data.subarray(0, 777)).digest("hex"));
  assertThrows(() => createHash("md5"));
  assertEquals(nodeCrypto().createHash, createHash);
});

Deno.test("the page's CPace group is @noble/curves' build, which needs no native library", async () => {
  assertEquals((await browserRistretto255()).name, "@noble/curves");
});

Deno.test("the page's hashes give what the CLI's give", () => {
  for (let n = 0; n < 200; n += 9) {
    const data = crypto.getRandomValues(new Uint8Array(n));
    const key = crypto.getRandomValues(new Uint8Array(n % 70));
    assertEquals(browserHashes.sha256(data), shortHashes.sha256(data));
    assertEquals(browserHashes.sha512(data), shortHashes.sha512(data));
    assertEquals(browserHashes.hmacSha256(key, data), shortHashes.hmacSha256(key, data));
  }
});
