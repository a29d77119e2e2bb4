/**
 * The permission set the project ships, read from deno.json's tasks, so that
 * end-to-end tests run the CLI exactly as `deno task serve` / `deno task
 * send` do (never with --allow-all).
 */
const config = JSON.parse(
  await Deno.readTextFile(new URL("../deno.json", import.meta.url)),
) as { tasks: Record<string, string> };

/** The `--allow-*` flags of `deno task <task>` (serve or send). */
export function shippedPermissions(task: "serve" | "send"): string[] {
  const line = config.tasks[task];
  if (line === undefined) throw new Error(`deno.json has no task '${task}'`);
  return line.split(/\s+/).filter((word) => word.startsWith("--allow-") || word === "--no-prompt");
}
