/** The AEAD engines (src/transport/aead*.ts): OpenSSL through FFI, and node:crypto. */
import { assert, assertEquals } from "@std/assert";
import { type ChaChaPoly, defaultChaChaPoly, passesKnownAnswer } from "../src/transport/aead.ts";
import { nodeChaChaPoly } from "../src/transport/aead_node.ts";
import {
  ALLOW_FFI_FLAG,
  LIBCRYPTO_PATHS,
  loadOpensslChaChaPoly,
} from "../src/transport/aead_openssl.ts";

function hex(s: string): Uint8Array {
  const clean = s.replace(/\s+/g, "");
  return Uint8Array.from(
    { length: clean.length / 2 },
    (_, i) => parseInt(clean.slice(2 * i, 2 * i + 2), 16),
  );
}

const VECTOR = {
  key: hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"),
  nonce: hex("070000004041424344454647"), // constant 07000000 || IV 4041424344454647
  aad: hex("50515253c0c1c2c3c4c5c6c7"),
  plaintext: new TextEncoder().encode(
    "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for " +
      "the future, sunscreen would be it.",
  ),
  ciphertext: hex(`
    d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6
    3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36
    92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc
    3ff4def08e4b7a9de576d26586cec64b6116`),
  tag: hex("1ae10b594f09e26a7e902ecbd0600691"),
};

const openssl = loadOpensslChaChaPoly();
const ENGINES: ChaChaPoly[] = openssl === null ? [nodeChaChaPoly] : [nodeChaChaPoly, openssl];

Deno.test({
  name: "loadOpensslChaChaPoly() finds OpenSSL 3 where the test task allows it",
  // The test task grants ffi for LIBCRYPTO_PATHS; only a system without any of them skips.
  ignore: !LIBCRYPTO_PATHS.some((p) => {
    try {
      return Deno.statSync(p).isFile &&
        Deno.permissions.querySync({ name: "ffi", path: p }).state === "granted";
    } catch {
      return false;
    }
  }),
  fn() {
    assert(openssl !== null, "a libcrypto is present and permitted, but did not load");
    assertEquals(openssl?.engine, "openssl");
    assertEquals(defaultChaChaPoly().engine, "openssl");
  },
});

Deno.test("loadOpensslChaChaPoly() gives null for a path that is missing or not permitted", () => {
  assertEquals(loadOpensslChaChaPoly(["/nonexistent/libcrypto.so.3"]), null);
  // A real library, but ffi permission is scoped to LIBCRYPTO_PATHS: never loaded, never prompted.
  assertEquals(loadOpensslChaChaPoly(["/usr/lib/x86_64-linux-gnu/libc.so.6"]), null);
});

for (const aead of ENGINES) {
  const test = (name: string, fn: () => void) => Deno.test(`${name} [${aead.engine}]`, fn);

  test("seal() matches the RFC 8439 §2.8.2 AEAD test vector", () => {
    const out = new Uint8Array(VECTOR.plaintext.length + 16);
    aead.seal(VECTOR.key, VECTOR.nonce, VECTOR.aad, [VECTOR.plaintext], out);
    assertEquals(out.subarray(0, VECTOR.plaintext.length), VECTOR.ciphertext);
    assertEquals(out.subarray(VECTOR.plaintext.length), VECTOR.tag);
  });

  test("open() returns the RFC 8439 §2.8.2 plaintext and refuses every flipped bit", () => {
    const plain = aead.open(
      VECTOR.key,
      VECTOR.nonce,
      VECTOR.aad,
      VECTOR.ciphertext.slice(),
      VECTOR.tag,
    );
    assertEquals(plain, VECTOR.plaintext);
    const parts = { aad: VECTOR.aad, ct: VECTOR.ciphertext, tag: VECTOR.tag } as const;
    for (const part of ["aad", "ct", "tag"] as const) {
      for (let i = 0; i < parts[part].length; i += 7) {
        const bad = {
          aad: VECTOR.aad.slice(),
          ct: VECTOR.ciphertext.slice(),
          tag: VECTOR.tag.slice(),
        };
        bad[part][i] ^= 0x80;
        assertEquals(
          aead.open(VECTOR.key, VECTOR.nonce, bad.aad, bad.ct, bad.tag),
          null,
          `${part}[${i}]`,
        );
      }
    }
    const wrongNonce = VECTOR.nonce.slice();
    wrongNonce[11] ^= 1;
    assertEquals(
      aead.open(VECTOR.key, wrongNonce, VECTOR.aad, VECTOR.ciphertext.slice(), VECTOR.tag),
      null,
    );
  });

  test("seal() of pieces equals seal() of their concatenation, and leaves the input alone", () => {
    const data = crypto.getRandomValues(new Uint8Array(3000));
    const copy = data.slice();
    const whole = new Uint8Array(data.length + 16);
    const pieces = new Uint8Array(data.length + 16);
    aead.seal(VECTOR.key, VECTOR.nonce, new Uint8Array(0), [data], whole);
    aead.seal(VECTOR.key, VECTOR.nonce, new Uint8Array(0), [
      data.subarray(0, 1),
      data.subarray(1, 1000),
      new Uint8Array(0),
      data.subarray(1000),
    ], pieces);
    assertEquals(pieces, whole);
    assertEquals(data, copy);
  });

  test("passesKnownAnswer() accepts the engine", () => {
    assert(passesKnownAnswer(aead));
  });
}

Deno.test("passesKnownAnswer() rejects an engine that gets the vector wrong or accepts forgeries", () => {
  const wrongBytes: ChaChaPoly = {
    engine: "broken",
    seal: (k, n, a, p, out) => {
      nodeChaChaPoly.seal(k, n, a, p, out);
      out[0] ^= 1;
    },
    open: nodeChaChaPoly.open,
  };
  const acceptsAnything: ChaChaPoly = {
    engine: "broken",
    seal: nodeChaChaPoly.seal,
    open: (_k, _n, _a, ct) => ct,
  };
  assertEquals(passesKnownAnswer(wrongBytes), false);
  assertEquals(passesKnownAnswer(acceptsAnything), false);
});

Deno.test("deno.json's serve, send and test tasks grant ffi for exactly LIBCRYPTO_PATHS", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  for (const task of ["serve", "send", "test"]) {
    const flags = (config.tasks[task] as string).split(/\s+/).filter((f) =>
      f.startsWith("--allow-ffi")
    );
    assertEquals(flags, [ALLOW_FFI_FLAG], task);
  }
});
