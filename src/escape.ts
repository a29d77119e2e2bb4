/**
 * Names from the network are shown to people only through `escapeName`, so
 * a hostile name cannot move the cursor, clear the screen or hide text.
 */

// C0 and C1 controls, DEL, the line and paragraph separators, and every bidi control of Unicode's
// UAX #9 (the embeddings, overrides and isolates, and the marks ALM, LRM and RLM), which can reorder
// what is shown around them.
const UNSAFE =
  // deno-lint-ignore no-control-regex
  /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** Replaces control and bidi-override characters with visible escapes. */
export function escapeName(name: string): string {
  return name.replace(UNSAFE, (c) => `\\u{${c.codePointAt(0)!.toString(16)}}`);
}
