/**
 * The short code people type: a number and three words from the BIP-39
 * English list (2048 words), e.g. `4821-crane-lotus-oyster`:
 * log2(10000) + 3 × 11 ≈ 46 bits. It is the password of the key exchange
 * (src/transport/cpace.ts), never sent itself.
 */
import { wordlist } from "@scure/bip39/wordlists/english.js";

/** The environment variable both sides read the code from (it stays out of the process list). */
export const CODE_ENV = "FERRY_CODE";

export const CODE_BITS = Math.log2(10_000) + 3 * Math.log2(wordlist.length);
const MAX_CODE_CHARS = 128;

/** A uniformly random integer in [0, n), by rejection sampling. */
function randomBelow(n: number): number {
  const limit = Math.floor(0x1_0000_0000 / n) * n;
  const word = new Uint32Array(1);
  for (;;) {
    crypto.getRandomValues(word);
    const value = word[0]!;
    if (value < limit) return value % n;
  }
}

export function generateCode(): string {
  const words = [0, 1, 2].map(() => wordlist[randomBelow(wordlist.length)]);
  return [String(randomBelow(10_000)), ...words].join("-");
}

/**
 * The canonical form both sides feed to the key exchange (PROTOCOL.md §4.2),
 * so that two people who typed the same code in different ways agree:
 * Unicode compatibility normalization (NFKC), full case folding as
 * upper-then-lower case, with every final sigma `ς` as `σ` (so `ß` and
 * `SS` agree, and so do `Σ`, `σ` and `ς`), NFKC again, then any run of white space, underscores or
 * hyphens as one hyphen, none at either end. Null if empty or too long.
 */
export function normalizeCode(input: string): string | null {
  const folded = input.normalize("NFKC").toUpperCase().toLowerCase().replace(/\u03c2/g, "\u03c3")
    .normalize("NFKC");
  const code = folded.trim().replace(/[\s_-]+/g, "-").replace(/^-|-$/g, "");
  if (code.length === 0 || code.length > MAX_CODE_CHARS) return null;
  return code;
}
