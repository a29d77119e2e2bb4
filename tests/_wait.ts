/** Waiting for something a test cannot be told about, by polling. */

/**
 * Polls `check` until it is true; after `ms` throws an error that names
 * `what` it waited for. `what` may be a function, called only then, to say
 * what was seen by that time (a process's output, say).
 */
export async function waitFor(
  what: string | (() => string),
  check: () => boolean | Promise<boolean>,
  ms = 10_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${ms} ms waiting for ${typeof what === "string" ? what : what()}`,
      );
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}
