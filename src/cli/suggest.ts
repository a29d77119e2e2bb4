/**
 * "Did you mean …?": the known words (commands, options) closest to one that
 * was mistyped, by Damerau–Levenshtein distance or as an abbreviation.
 */

/**
 * The Damerau–Levenshtein distance (optimal string alignment): insertions,
 * deletions, substitutions and swaps of two neighbours each count 1.
 */
export function editDistance(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  // d(i, j): the distance between the first i characters of x and the first j of y, kept in
  // one flat table of (x.length + 1) × (y.length + 1) cells.
  const width = y.length + 1;
  const table = new Array<number>((x.length + 1) * width).fill(0);
  const d = (i: number, j: number) => table[i * width + j]!;
  for (let i = 0; i <= x.length; i++) table[i * width] = i;
  for (let j = 0; j <= y.length; j++) table[j] = j;
  for (let i = 1; i <= x.length; i++) {
    for (let j = 1; j <= y.length; j++) {
      const cost = x[i - 1] === y[j - 1] ? 0 : 1;
      let best = Math.min(d(i - 1, j) + 1, d(i, j - 1) + 1, d(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && x[i - 1] === y[j - 2] && x[i - 2] === y[j - 1]) {
        best = Math.min(best, d(i - 2, j - 2) + 1);
      }
      table[i * width + j] = best;
    }
  }
  return d(x.length, y.length);
}

/** Suggestions offered at most. */
const MAX_SUGGESTIONS = 3;

/**
 * The candidates `word` most likely meant, best first (none if nothing is
 * close), compared without regard to case: those at the smallest distance,
 * if it is at most 2 (at most 1 for words of 3 characters or fewer, where 2
 * would match almost anything); otherwise those `word` abbreviates (2
 * characters at least), or that it extends (`jsonl` for `json`).
 */
export function suggest(word: string, candidates: readonly string[]): string[] {
  const typed = word.toLowerCase();
  if (typed === "") return [];
  const limit = [...typed].length <= 3 ? 1 : 2;
  let best = limit + 1;
  let closest: string[] = [];
  for (const candidate of candidates) {
    const distance = editDistance(typed, candidate.toLowerCase());
    if (distance > limit) continue;
    if (distance < best) {
      best = distance;
      closest = [candidate];
    } else if (distance === best) {
      closest.push(candidate);
    }
  }
  if (closest.length > 0) return closest.slice(0, MAX_SUGGESTIONS);
  return candidates.filter((candidate) => {
    const known = candidate.toLowerCase();
    return (typed.length >= 2 && known.startsWith(typed)) ||
      (known.length >= 3 && typed.startsWith(known));
  }).slice(0, MAX_SUGGESTIONS);
}

/**
 * `did you mean --retries?` (or `… --a or --b?`), each suggestion shown by
 * `show`; null when there is nothing close.
 */
export function didYouMean(
  word: string,
  candidates: readonly string[],
  show: (candidate: string) => string = (candidate) => candidate,
): string | null {
  const found = suggest(word, candidates).map(show);
  if (found.length === 0) return null;
  const list = found.length === 1
    ? found[0]
    : `${found.slice(0, -1).join(", ")} or ${found.at(-1)}`;
  return `did you mean ${list}?`;
}
