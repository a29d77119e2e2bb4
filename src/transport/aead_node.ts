/**
 * ChaCha20-Poly1305 from node:crypto: available everywhere Deno runs. Each
 * call allocates its output (node's API returns new buffers), which is why
 * the OpenSSL engine is preferred where it can be loaded.
 */
import { createCipheriv, createDecipheriv } from "node:crypto";
import type { ChaChaPoly } from "./aead.ts";

const ALGORITHM = "chacha20-poly1305";
const TAG_BYTES = 16;

export const nodeChaChaPoly: ChaChaPoly = {
  engine: "node:crypto",

  seal(key, nonce, aad, plaintext, out) {
    let length = 0;
    for (const part of plaintext) length += part.length;
    if (out.length !== length + TAG_BYTES) {
      throw new RangeError("seal: out is plaintext + 16 bytes");
    }
    const cipher = createCipheriv(ALGORITHM, key, nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(aad, { plaintextLength: length });
    let at = 0;
    for (const part of plaintext) {
      if (part.length === 0) continue;
      const piece = cipher.update(part);
      out.set(piece, at);
      at += piece.length;
    }
    cipher.final();
    out.set(cipher.getAuthTag(), at);
  },

  open(key, nonce, aad, ciphertext, tag) {
    const decipher = createDecipheriv(ALGORITHM, key, nonce, { authTagLength: TAG_BYTES });
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
};
