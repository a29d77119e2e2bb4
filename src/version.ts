/** ferry's version; `deno task compile` embeds it, `ferry --version` prints it. */
export const VERSION = "0.1.0";
export const SOFTWARE = `ferry/${VERSION}`;
