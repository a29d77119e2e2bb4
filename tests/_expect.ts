/**
 * Narrowing checks for the tests. The @std/assert in use here is untyped, so
 * `assert(x !== undefined)` does not narrow `x`; these do, and fail the test
 * with a message that says what was missing.
 */

/** `value`, which must not be undefined (an array element, a map entry, a regex group). */
export function defined<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`expected ${what}, got undefined`);
  return value;
}
