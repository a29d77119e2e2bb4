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
  // rows[i][j]: the distance between the first i characters of x and the first j of y.
  const rows: number[][] = [];
  for (let i = 0; i <= x.length; i++) {
    rows.push([i]);
    for (let j = 1; j <= y.length; j++) rows[i].push(i === 0 ? j : 0);
  }
  for (let i = 1; i <= x.length; i++) {
    for (let j = 1; j <= y.length; j++) {
      const cost = x[i - 1] === y[j - 1] ? 0 : 1;
      let best = Math.min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && x[i - 1] === y[j - 2] && x[i - 2] === y[j - 1]) {
        best = Math.min(best, rows[i - 2][j - 2] + 1);
      }
      rows[i][j] = best;
    }
  }
  return rows[x.length][y.length];
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
