/** The AEAD suites and engines (src/transport/aead*.ts): OpenSSL through FFI, and node:crypto. */
import { assert, assertEquals } from "@std/assert";
import {
  type Aead,
  defaultAead,
  fastSuites,
  fromHex,
  KNOWN_ANSWERS,
  passesKnownAnswer,
  SUITES,
} from "../src/transport/aead.ts";
import { nodeAead } from "../src/transport/aead_node.ts";
import { loadOpensslAead } from "../src/transport/aead_openssl.ts";
import { LIBCRYPTO_PATHS } from "../src/native/libcrypto.ts";
import { ALLOW_FFI_FLAG } from "../src/cli/ffi_permission.ts";

const SUITE_ENGINES: Aead[] = SUITES.flatMap((suite) => {
  const openssl = loadOpensslAead(suite);
  return openssl === null ? [nodeAead(suite)] : [nodeAead(suite), openssl];
});
const opensslPermitted = LIBCRYPTO_PATHS.some((p) => {
  try {
    return Deno.statSync(p).isFile &&
      Deno.permissions.querySync({ name: "ffi", path: p }).state === "granted";
  } catch {
    return false;
  }
});

Deno.test({
  name: "loadOpensslAead() finds OpenSSL 3 for both suites where the test task allows it",
  // The test task grants ffi for LIBCRYPTO_PATHS; only a system without any of them skips.
  ignore: !opensslPermitted,
  fn() {
    for (const suite of SUITES) {
      const openssl = loadOpensslAead(suite);
      assert(openssl !== null, `a libcrypto is present and permitted, but ${suite} did not load`);
      assertEquals([openssl?.engine, openssl?.suite], ["openssl", suite]);
      assertEquals(defaultAead(suite).engine, "openssl");
    }
    assertEquals(fastSuites(), ["aes-256-gcm", "chacha20-poly1305"]);
  },
});

Deno.test("loadOpensslAead() gives null for a path that is missing or not permitted", () => {
  assertEquals(loadOpensslAead("aes-256-gcm", ["/nonexistent/libcrypto.so.3"]), null);
  // A real library, but ffi permission is scoped to FFI_PATHS: never loaded, never prompted.
  assertEquals(
    loadOpensslAead("chacha20-poly1305", ["/usr/lib/x86_64-linux-gnu/libm.so.6"]),
    null,
  );
});

for (const aead of SUITE_ENGINES) {
  const test = (name: string, fn: () => void) =>
    Deno.test(`${name} [${aead.suite}, ${aead.engine}]`, fn);
  const v = KNOWN_ANSWERS[aead.suite];
  const VECTOR = {
    key: fromHex(v.key),
    nonce: fromHex(v.nonce),
    aad: fromHex(v.aad),
    plaintext: fromHex(v.plaintext),
    ciphertext: fromHex(v.ciphertext),
    tag: fromHex(v.tag),
  };

  test(`seal() matches the published test vector (${v.source})`, () => {
    const out = new Uint8Array(VECTOR.plaintext.length + 16);
    aead.seal(VECTOR.key, VECTOR.nonce, VECTOR.aad, [VECTOR.plaintext], out);
    assertEquals(out.subarray(0, VECTOR.plaintext.length), VECTOR.ciphertext);
    assertEquals(out.subarray(VECTOR.plaintext.length), VECTOR.tag);
  });

  test("open() returns the vector's plaintext and refuses every flipped bit", () => {
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
        bad[part][i]! ^= 0x80;
        assertEquals(
          aead.open(VECTOR.key, VECTOR.nonce, bad.aad, bad.ct, bad.tag),
          null,
          `${part}[${i}]`,
        );
      }
    }
    const wrongNonce = VECTOR.nonce.slice();
    wrongNonce[11]! ^= 1;
    assertEquals(
      aead.open(VECTOR.key, wrongNonce, VECTOR.aad, VECTOR.ciphertext.slice(), VECTOR.tag),
      null,
    );
    assertEquals(
      aead.open(
        VECTOR.key,
        VECTOR.nonce,
        VECTOR.aad,
        VECTOR.ciphertext.slice(),
        VECTOR.tag.subarray(0, 12),
      ),
      null,
      "a short tag",
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

Deno.test("the two suites give different bytes for the same key, nonce and plaintext", () => {
  const key = new Uint8Array(32).fill(1);
  const nonce = new Uint8Array(12);
  const plain = new TextEncoder().encode("same input");
  const sealWith = (aead: Aead) => {
    const out = new Uint8Array(plain.length + 16);
    aead.seal(key, nonce, new Uint8Array(0), [plain], out);
    return out;
  };
  const gcm = sealWith(nodeAead("aes-256-gcm"));
  const chacha = sealWith(nodeAead("chacha20-poly1305"));
  assert(gcm.some((b, i) => b !== chacha[i]));
  // ...and neither opens the other's record.
  assertEquals(
    nodeAead("aes-256-gcm").open(
      key,
      nonce,
      new Uint8Array(0),
      chacha.slice(0, -16),
      chacha.slice(-16),
    ),
    null,
  );
});

Deno.test("passesKnownAnswer() rejects an engine that gets the vector wrong or accepts forgeries", () => {
  for (const suite of SUITES) {
    const good = nodeAead(suite);
    const wrongBytes: Aead = {
      suite,
      engine: "broken",
      seal: (k, n, a, p, out) => {
        good.seal(k, n, a, p, out);
        out[0]! ^= 1;
      },
      open: good.open,
      openInto: good.openInto,
    };
    const acceptsAnything: Aead = {
      suite,
      engine: "broken",
      seal: good.seal,
      open: (_k, _n, _a, ct) => ct,
      openInto: () => true,
    };
    // Right in seal() and open(), but openInto() takes a forged tag.
    const openIntoForged: Aead = {
      ...good,
      openInto: (k, n, a, ct, tag, out) =>
        good.openInto(k, n, a, ct, tag, out) || (out.forEach((p) => p.fill(0)), true),
    };
    // The right bytes, but for the other suite.
    const otherSuite: Aead = { ...nodeAead(SUITES.find((s) => s !== suite)!), suite };
    assertEquals(passesKnownAnswer(wrongBytes), false, suite);
    assertEquals(passesKnownAnswer(acceptsAnything), false, suite);
    assertEquals(passesKnownAnswer(openIntoForged), false, suite);
    assertEquals(passesKnownAnswer(good), true, suite);
    assertEquals(passesKnownAnswer(otherSuite), false, suite);
  }
});

Deno.test("the permission set grants ffi for exactly FFI_PATHS, and every task runs with the set", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  assertEquals(`--allow-ffi=${config.permissions.ferry.ffi.join(",")}`, ALLOW_FFI_FLAG);
  for (const task of ["serve", "send", "test", "test:unit"]) {
    const words = (config.tasks[task] as string).split(/\s+/);
    assertEquals(words.filter((f) => f === "-P=ferry"), ["-P=ferry"], task);
    assertEquals(
      words.filter((f) => f.startsWith("--allow-ffi")),
      [],
      `${task}: no second ffi list`,
    );
  }
});
