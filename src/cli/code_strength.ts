/**
 * How easy a code a person chose is to guess, as an estimate of the number
 * of guesses an attacker who knows how people pick codes would need. Codes
 * that ferry generates (a number and three BIP-39 words) are counted
 * exactly; anything else by its parts: a BIP-39 word counts as one of 2048,
 * a run of digits as one of 10^n, other text by the characters it uses,
 * where a character that repeats or continues a sequence (`aaa`, `abc`,
 * `321`) adds almost nothing. It errs on the generous side for random-looking
 * text and is only used to refuse or warn; the lockouts (code_guard.ts) do
 * the real limiting.
 */
import { wordlist } from "@scure/bip39/wordlists/english.js";
import { CODE_BITS } from "../transport/generated_code.ts";

const WORDS = new Set(wordlist);
/** Passwords people pick first: each counts as found within a hundred guesses. */
const COMMON = new Set([
  "password",
  "passw0rd",
  "letmein",
  "welcome",
  "admin",
  "secret",
  "qwerty",
  "qwertz",
  "azerty",
  "iloveyou",
  "monkey",
  "dragon",
  "football",
  "baseball",
  "sunshine",
  "princess",
  "master",
  "shadow",
  "hunter",
  "hunter2",
  "trustno1",
  "changeme",
  "default",
  "ferry",
  "test",
  "guest",
  "root",
  "login",
  "abc123",
  "p@ssw0rd",
  "freedom",
  "whatever",
  "starwars",
  "pokemon",
]);

/** Below this many guesses a chosen code is refused: the lockouts would not hold it for long. */
export const REFUSE_BELOW_GUESSES = 2 ** 24;
/** Below this many a chosen code is accepted with a warning (a generated one has about 2^46). */
export const WARN_BELOW_GUESSES = 2 ** 40;

/** The estimated number of guesses that find `code` (already normalized). */
export function estimateGuesses(code: string): number {
  if (GENERATED.test(code) && code.split("-").slice(1).every((w) => WORDS.has(w))) {
    return 2 ** CODE_BITS;
  }
  let guesses = 1;
  for (const part of code.split("-")) guesses *= partGuesses(part);
  return guesses;
}

/** The shape of a generated code: a number below 10,000 and three words. */
const GENERATED = /^(0|[1-9]\d{0,3})-[a-z]+-[a-z]+-[a-z]+$/;

function partGuesses(part: string): number {
  if (COMMON.has(part)) return 100;
  if (WORDS.has(part)) return wordlist.length;
  const chars = [...part];
  let pool = 0;
  if (chars.some((c) => c >= "a" && c <= "z")) pool += 26;
  if (chars.some((c) => c >= "0" && c <= "9")) pool += 10;
  if (chars.some((c) => c < "0" || (c > "9" && c < "a") || (c > "z" && c <= "\x7f"))) pool += 33;
  if (chars.some((c) => c > "\x7f")) pool += 100;
  let guesses = 1;
  for (const [i, char] of chars.entries()) {
    const step = i === 0 ? NaN : char.codePointAt(0)! - chars[i - 1]!.codePointAt(0)!;
    // A repeat or a step of one from the character before: about one choice in three.
    guesses *= Math.abs(step) <= 1 ? 3 : pool;
  }
  return guesses;
}

/** Guesses as people read them: "about 3 million", "about 8.8e13". */
export function formatGuesses(guesses: number): string {
  if (guesses < 1e6) return `about ${Math.round(guesses).toLocaleString("en-US")}`;
  if (guesses < 1e9) return `about ${Math.round(guesses / 1e6)} million`;
  return `about ${guesses.toExponential(1)}`;
}
