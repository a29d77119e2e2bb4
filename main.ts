/**
 * ferry: move files between machines on a LAN. This file only dispatches
 * to the subcommands and turns expected errors into one line (and a hint)
 * and an exit code (0 ok, 1 failure, 2 usage); with --json, into an `error`
 * object on stdout (docs/JSON.md).
 *
 * A subcommand's modules are imported when it runs, not before: `--version`
 * and `help` load none of them, `send` none of the receiver's (the server, the
 * web page, the discovery responder). Start-up is most of a small send's time.
 * The specifiers are string literals, so `deno compile` still includes them.
 */
import { ExitCode, FerryError, UsageError } from "./src/errors.ts";
import { escapeName } from "./src/escape.ts";
import { loadNativeThenRevoke } from "./src/cli/ffi_permission.ts";
import { LAUNCHER_ENV } from "./src/cli/launcher.ts";
import { missingPermissions, PERMISSION_SET_NAME } from "./src/cli/permission_set.ts";
import { emitJson, errorObject, wantsJson } from "./src/cli/output.ts";
import { didYouMean } from "./src/cli/suggest.ts";
import { helpFor, MAIN_HELP } from "./src/subcommands/help.ts";
import { VERSION } from "./src/version.ts";

export async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  switch (command) {
    case "serve": {
      const { serve } = await import("./src/subcommands/serve.ts");
      return await serve(rest);
    }
    case "send": {
      const { send } = await import("./src/subcommands/send.ts");
      return await send(rest);
    }
    case "help": {
      const text = helpFor(rest[0]);
      if (text === null) throw new UsageError(`no help for '${rest[0]}'`, "run 'ferry help'");
      console.log(text);
      return ExitCode.ok;
    }
    case "--help":
    case "-h":
      console.log(MAIN_HELP);
      return ExitCode.ok;
    case "--version":
    case "-V":
      console.log(`ferry ${VERSION}`);
      return ExitCode.ok;
    case undefined:
      console.error(MAIN_HELP);
      return ExitCode.usage;
    default: {
      const guess = didYouMean(command, ["serve", "send", "help", "--version"], (c) => `'${c}'`);
      throw new UsageError(
        `unknown command '${command}'`,
        guess === null ? "run 'ferry help'" : `${guess} 'ferry help' lists the commands`,
      );
    }
  }
}

/**
 * Before serve or send: every permission of the shipped set is there (or
 * denied on purpose), and under `deno task` paths are the user's: the task
 * runs in the repository, so ferry moves to the folder it was started from
 * (INIT_CWD).
 */
function startUp(): void {
  const missing = missingPermissions();
  if (missing.length > 0) {
    throw new FerryError("permission", `started without permission for ${missing.join(", ")}`, {
      hint: `run the installed 'ferry', 'deno task serve' or 'deno task send', or ` +
        `'deno run -P=${PERMISSION_SET_NAME} main.ts ...'; to do without one on purpose, deny it ` +
        `(e.g. --deny-ffi)`,
    });
  }
  const cwd = Deno.env.get(LAUNCHER_ENV) === "task" ? Deno.env.get("INIT_CWD") : undefined;
  if (cwd !== undefined && cwd !== "") Deno.chdir(cwd);
}

if (import.meta.main) {
  let code: number;
  try {
    const command = Deno.args[0];
    if (command === "serve" || command === "send") {
      startUp();
      await loadNativeThenRevoke(command);
    }
    code = await main(Deno.args);
  } catch (err) {
    const command = Deno.args[0] ?? "";
    const json = ["serve", "send"].includes(command) && wantsJson(Deno.args.slice(1));
    if (json) {
      emitJson(errorObject(err));
      if (!(err instanceof FerryError)) console.error(err); // a bug: keep its stack trace
    } else if (err instanceof FerryError) {
      // Lines stay lines; anything else that could steer the terminal is shown escaped.
      const text = `ferry: ${err.message}${err.hint === undefined ? "" : `\n(${err.hint})`}`;
      console.error(text.split("\n").map(escapeName).join("\n"));
    } else {
      console.error("ferry: internal error (a bug; please report it):");
      console.error(err);
    }
    code = err instanceof FerryError ? err.exitCode : ExitCode.failure;
  }
  Deno.exit(code);
}
