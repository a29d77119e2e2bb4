/**
 * A new code, as `ferry serve` makes one: a number and three words from the
 * BIP-39 English list (2048 words), e.g. `4821-crane-lotus-oyster`:
 * log2(10000) + 3 × 11 ≈ 46 bits. Only what makes or rates codes imports this
 * file (and with it the word list); normalizing one is src/transport/code.ts.
 */
import { wordlist } from "@scure/bip39/wordlists/english.js";

export const CODE_BITS = Math.log2(10_000) + 3 * Math.log2(wordlist.length);

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
