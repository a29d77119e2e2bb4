/**
 * System tools for the tests that need a file system of their own: a small
 * tmpfs (disk_faults_test.ts) or an ext4 image they can freeze
 * (hung_disk_test.ts). These need Linux and root; `missingTools` and the
 * callers' own checks say why a test is skipped otherwise.
 */
import { assert } from "@std/assert";

/** Runs `cmd` with its output dropped and its error output kept for the failure message. */
export async function runTool(cmd: string, args: string[]): Promise<Deno.CommandOutput> {
  return await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).output();
}

/** Fails the test with the tool's own error output unless it succeeded. */
export function assertRan(output: Deno.CommandOutput): void {
  assert(output.success, new TextDecoder().decode(output.stderr));
}

export async function mount(args: string[]): Promise<Deno.CommandOutput> {
  return await runTool("mount", args);
}

/** Unmounts `dir`, lazily: a file still open there does not keep the test waiting. */
export async function umount(dir: string): Promise<void> {
  await runTool("umount", ["-l", dir]);
}

/** Freezes (`fsfreeze -f`) the file system mounted at `dir`; `thaw` undoes it. */
export async function freeze(dir: string): Promise<void> {
  assertRan(await runTool("fsfreeze", ["-f", dir]));
}

/** Thaws `dir`; harmless when it is not frozen. */
export async function thaw(dir: string): Promise<void> {
  await runTool("fsfreeze", ["-u", dir]);
}

/** The first of `tools` not found on the PATH, as a reason to skip; null if all are there. */
export async function missingTools(tools: readonly string[]): Promise<string | null> {
  for (const tool of tools) {
    const found = await new Deno.Command("sh", {
      args: ["-c", `command -v ${tool}`],
      stdout: "null",
      stderr: "null",
    }).output();
    if (!found.success) return `needs ${tool}`;
  }
  return null;
}
