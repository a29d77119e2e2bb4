/**
 * The short code people type, e.g. `4821-crane-lotus-oyster` (a new one comes
 * from src/transport/generated_code.ts). It is the password of the key
 * exchange (src/transport/cpace.ts), never sent itself. This file has no
 * word list: a sender that is given a code never loads one.
 */

/** The environment variable both sides read the code from (it stays out of the process list). */
export const CODE_ENV = "FERRY_CODE";

const MAX_CODE_CHARS = 128;

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
