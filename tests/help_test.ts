/**
 * The help texts, compared with tests/snapshots/*.txt. After changing a
 * help text on purpose, rewrite the snapshots with
 * `UPDATE_SNAPSHOTS=1 deno task test tests/help_test.ts` and review the diff.
 */
import { assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { runCli } from "./_harness.ts";

const SNAPSHOTS = new URL("./snapshots/", import.meta.url);
const UPDATE = Deno.env.get("UPDATE_SNAPSHOTS") === "1";

async function matchesSnapshot(actual: string, name: string): Promise<void> {
  const file = new URL(name, SNAPSHOTS);
  if (UPDATE) {
    await Deno.writeTextFile(file, actual);
    return;
  }
  let expected: string;
  try {
    expected = await Deno.readTextFile(file);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new Error(`no snapshot ${name}: run with UPDATE_SNAPSHOTS=1 to create it`);
    }
    throw err;
  }
  assertEquals(actual, expected, `${name} differs (UPDATE_SNAPSHOTS=1 rewrites it)`);
}

for (
  const [args, snapshot] of [
    [["help"], "help.txt"],
    [["serve", "--help"], "serve-help.txt"],
    [["send", "--help"], "send-help.txt"],
  ] as const
) {
  Deno.test(`ferry ${args.join(" ")} matches ${snapshot}`, async () => {
    const result = await runCli([...args]);
    assertEquals(result.code, 0, result.stderr);
    assertEquals(result.stderr, "");
    await matchesSnapshot(result.stdout, snapshot);
  });
}

Deno.test("ferry help serve and ferry help send print the same text as --help", async () => {
  for (const command of ["serve", "send"]) {
    const viaHelp = await runCli(["help", command]);
    const viaFlag = await runCli([command, "--help"]);
    assertEquals(viaHelp.code, 0);
    assertEquals(viaHelp.stdout, viaFlag.stdout, command);
  }
});

Deno.test("ferry help, serve --help and send --help have examples and document the new flags", async () => {
  const main = (await runCli(["help"])).stdout;
  const serve = (await runCli(["serve", "--help"])).stdout;
  const send = (await runCli(["send", "--help"])).stdout;
  for (const text of [main, serve, send]) {
    assertStringIncludes(text, "Examples:");
    assertStringIncludes(text, "Usage:");
  }
  for (const flag of ["--json", "--no-discovery", "--discovery-port", "--code", "--open"]) {
    assertStringIncludes(serve, flag);
  }
  for (const flag of ["--json", "--exclude", "--to", "FERRY_DISCOVERY_ADDRESS", "UDP"]) {
    assertStringIncludes(send, flag);
  }
});

Deno.test("serve --help and send --help each show the code given through FERRY_CODE", async () => {
  for (const command of ["serve", "send"]) {
    const { stdout } = await runCli([command, "--help"]);
    const examples = stdout.slice(stdout.indexOf("Examples:"));
    assertMatch(examples, new RegExp(`^  FERRY_CODE=.+ ferry ${command} `, "m"), command);
  }
});

Deno.test("ferry help and ferry send --help fit in 80 columns", async () => {
  for (const args of [["help"], ["send", "--help"]]) {
    const { stdout } = await runCli(args);
    for (const line of stdout.split("\n")) {
      assertEquals(line.length <= 80, true, `too long: ${line}`);
    }
  }
});

Deno.test("ferry help with an unknown command is a usage error", async () => {
  const result = await runCli(["help", "frobnicate"]);
  assertEquals(result.code, 2);
  assertEquals(result.stderr, "ferry: no help for 'frobnicate'\n(run 'ferry help')\n");
});
