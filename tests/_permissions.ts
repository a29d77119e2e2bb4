/**
 * The permission set the project ships (deno.json `permissions.ferry`), as
 * the flags that run the CLI exactly as `deno task serve` / `deno task send`
 * and the installed `ferry` do: the set, and never a prompt. End-to-end tests
 * use these, never --allow-all, so a permission the code needs and the set
 * lacks fails a test.
 */
const CONFIG = new URL("../deno.json", import.meta.url).pathname;

export const SHIPPED_PERMISSIONS: readonly string[] = [
  "--config",
  CONFIG,
  "-P=ferry",
  "--no-prompt",
];

/** The flags of `deno task <task>`'s permission set (serve and send share one). */
export function shippedPermissions(_task: "serve" | "send"): string[] {
  return [...SHIPPED_PERMISSIONS];
}
