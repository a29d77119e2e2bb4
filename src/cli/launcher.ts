/**
 * How this ferry was started, so that the command the serve banner prints
 * runs as printed on the other machine started the same way: the installed
 * `ferry` command, a standalone binary, `deno task` (from a clone, through
 * npx or an installed Deno), or `deno run` on the source.
 */

/** Set by the installed command (`installed`) and by the serve and send tasks (`task`). */
export const LAUNCHER_ENV = "FERRY_LAUNCHER";

export type Launcher = "installed" | "binary" | "task" | "source";

/** Folders that are on the PATH of most systems: a binary there runs by its name. */
const BIN_DIRS = ["/usr/local/bin", "/usr/bin", "/bin", "/opt/homebrew/bin"];

export function launcher(): Launcher {
  if (Deno.build.standalone) return "binary";
  let value: string | undefined;
  try {
    value = Deno.env.get(LAUNCHER_ENV);
  } catch { /* not permitted: started by hand */ }
  return value === "installed" || value === "task" ? value : "source";
}

/** The command that runs `ferry send` for a person who started ferry the way this one was. */
export function sendCommand(how: Launcher = launcher(), execPath = Deno.execPath()): string {
  switch (how) {
    case "installed":
      return "ferry send";
    case "binary": {
      const at = Math.max(execPath.lastIndexOf("/"), execPath.lastIndexOf("\\"));
      const name = execPath.slice(at + 1);
      const onPath = BIN_DIRS.includes(execPath.slice(0, at)) || /[/\\]\.local[/\\]bin$/.test(
        execPath.slice(0, at),
      );
      return `${onPath ? name : `./${name}`} send`;
    }
    case "task":
      // Deno from the npm registry through npx lives in npx's cache.
      return /[/\\]_npx[/\\]/.test(execPath)
        ? `npx -y deno@${Deno.version.deno} task -q send`
        : "deno task -q send";
    case "source":
      return "deno run -P=ferry main.ts send";
  }
}
