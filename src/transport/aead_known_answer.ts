/**
 * The published test vector of each record suite, and the check every AEAD
 * engine passes before use (aead.ts for Deno's engines, src/web/aead_browser.ts
 * for the page's). Platform-neutral.
 */
import type { Aead, Suite } from "./aead_suite.ts";
import { hexToBytes } from "../protocol/bytes.ts";

interface Vector {
  source: string;
  key: string;
  nonce: string;
  aad: string;
  plaintext: string;
  ciphertext: string;
  tag: string;
}

/** The published test vector each engine must reproduce before use, per suite. */
export const KNOWN_ANSWERS: Record<Suite, Vector> = {
  "chacha20-poly1305": {
    source: "RFC 8439 §2.8.2",
    key: "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
    nonce: "070000004041424344454647",
    aad: "50515253c0c1c2c3c4c5c6c7",
    plaintext: hexOf(
      "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for " +
        "the future, sunscreen would be it.",
    ),
    ciphertext: "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6" +
      "3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36" +
      "92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc" +
      "3ff4def08e4b7a9de576d26586cec64b6116",
    tag: "1ae10b594f09e26a7e902ecbd0600691",
  },
  "aes-256-gcm": {
    source: "McGrew & Viega, The Galois/Counter Mode of Operation, test case 16",
    key: "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
    nonce: "cafebabefacedbaddecaf888",
    aad: "feedfacedeadbeeffeedfacedeadbeefabaddad2",
    plaintext: "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72" +
      "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
    ciphertext: "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa" +
      "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
    tag: "76fc6ece0f4e1768cddf8853bb2d551b",
  },
};

function hexOf(text: string): string {
  return Array.from(new TextEncoder().encode(text), (b) => b.toString(16).padStart(2, "0"))
    .join("");
}

/** The known answers' hex, as bytes. */
export const fromHex = hexToBytes;

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Whether `aead` reproduces its suite's vector (split across two plaintext
 * pieces, as records are), opens it (into two pieces, then in place), and
 * refuses it with one bit flipped.
 */
export function passesKnownAnswer(aead: Aead): boolean {
  try {
    const v = KNOWN_ANSWERS[aead.suite];
    const key = fromHex(v.key);
    const nonce = fromHex(v.nonce);
    const aad = fromHex(v.aad);
    const plaintext = fromHex(v.plaintext);
    const expected = fromHex(v.ciphertext + v.tag);
    const out = new Uint8Array(expected.length);
    aead.seal(key, nonce, aad, [plaintext.subarray(0, 1), plaintext.subarray(1)], out);
    if (!sameBytes(out, expected)) return false;
    const ctEnd = plaintext.length;
    const tampered = out.slice();
    tampered[7]! ^= 1;
    if (aead.open(key, nonce, aad, tampered.subarray(0, ctEnd), tampered.subarray(ctEnd))) {
      return false;
    }
    const into = new Uint8Array(ctEnd);
    const pieces = [into.subarray(0, 1), into.subarray(1)];
    if (
      aead.openInto(key, nonce, aad, tampered.subarray(0, ctEnd), tampered.subarray(ctEnd), pieces)
    ) {
      return false;
    }
    if (!aead.openInto(key, nonce, aad, out.subarray(0, ctEnd), out.subarray(ctEnd), pieces)) {
      return false;
    }
    if (!sameBytes(into, plaintext)) return false;
    const back = aead.open(key, nonce, aad, out.subarray(0, ctEnd), out.subarray(ctEnd));
    return back !== null && sameBytes(back, plaintext);
  } catch {
    return false;
  }
}
