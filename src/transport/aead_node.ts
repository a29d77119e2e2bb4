/**
 * The AEAD suites from node:crypto: available everywhere Deno runs. Each
 * call allocates its output (node's API returns new buffers), which is why
 * the OpenSSL engine is preferred where it can be loaded. node:crypto is
 * loaded when an engine is first made (src/node_crypto.ts).
 */
import { nodeCrypto } from "../node_crypto.ts";
import type { Aead, Suite } from "./aead_suite.ts";

const TAG_BYTES = 16;

const engines = new Map<Suite, Aead>();

/** node:crypto's engine for `suite` (one object per suite). */
export function nodeAead(suite: Suite): Aead {
  let aead = engines.get(suite);
  if (aead === undefined) {
    aead = makeNodeAead(suite);
    engines.set(suite, aead);
  }
  return aead;
}

function makeNodeAead(suite: Suite): Aead {
  // node names both algorithms as ferry does; the cast narrows the overloads to the AEAD ones.
  const algorithm = suite as "chacha20-poly1305";
  const { createCipheriv, createDecipheriv } = nodeCrypto();
  const aead: Aead = {
    suite,
    engine: "node:crypto",

    seal(key, nonce, aad, plaintext, out) {
      let length = 0;
      for (const part of plaintext) length += part.length;
      if (out.length !== length + TAG_BYTES) {
        throw new RangeError("seal: out is plaintext + 16 bytes");
      }
      const cipher = createCipheriv(algorithm, key, nonce, { authTagLength: TAG_BYTES });
      cipher.setAAD(aad, { plaintextLength: length });
      let at = 0;
      for (const part of plaintext) {
        if (part.length === 0) continue;
        const piece = cipher.update(part);
        out.set(piece, at);
        at += piece.length;
      }
      const rest = cipher.final();
      out.set(rest, at);
      at += rest.length;
      out.set(cipher.getAuthTag(), at);
    },

    open(key, nonce, aad, ciphertext, tag) {
      if (tag.length !== TAG_BYTES) return null;
      const decipher = createDecipheriv(algorithm, key, nonce, { authTagLength: TAG_BYTES });
      decipher.setAAD(aad, { plaintextLength: ciphertext.length });
      decipher.setAuthTag(tag);
      try {
        const plain = ciphertext.length > 0 ? decipher.update(ciphertext) : new Uint8Array(0);
        decipher.final(); // verifies the tag; nothing is returned before it passes
        return new Uint8Array(plain.buffer, plain.byteOffset, plain.byteLength);
      } catch {
        return null;
      }
    },

    openInto(key, nonce, aad, ciphertext, tag, out) {
      let length = 0;
      for (const part of out) length += part.length;
      if (length !== ciphertext.length) {
        throw new RangeError("openInto: out is the ciphertext's size");
      }
      const plain = aead.open(key, nonce, aad, ciphertext, tag);
      if (plain === null) return false;
      let at = 0;
      for (const part of out) {
        part.set(plain.subarray(at, at + part.length));
        at += part.length;
      }
      return true;
    },
  };
  return aead;
}
