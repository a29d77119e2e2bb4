/**
 * What the operating system said about a failed call, as Deno reports it:
 * the error's class (`Deno.errors.*`) and its `code`, the errno's name
 * ("ENOSPC", "EROFS"), which Deno sets for the errnos it knows (and
 * src/native/libc.ts for the C library's calls). Callers decide by these,
 * never by an error's wording.
 */

/** The errno name Deno gives `err` (`err.code`, e.g. "ENOSPC"), or undefined. */
export function osCode(err: unknown): string | undefined {
  if (!(err instanceof Error)) return undefined;
  const code = (err as Error & { code?: unknown }).code;
  return typeof code === "string" ? code : undefined;
}

/**
 * The errno number of an OS error, for the few errnos Deno gives neither a
 * class nor a `code` (EDQUOT, EFBIG: Deno's table of errno names, from
 * libuv's, leaves them out). Deno says the number only in the message,
 * which ends in "(os error N)" (as src/native/libc.ts's do too), so this
 * reads that number there: the one place ferry reads a local error's text.
 */
export function osErrno(err: unknown): number | undefined {
  if (!(err instanceof Error)) return undefined;
  // error-text: Deno gives EDQUOT and EFBIG no class and no code, only "(os error N)" in the text.
  const found = /\(os error (\d+)\)/.exec(err.message);
  return found ? Number(found[1]) : undefined;
}
