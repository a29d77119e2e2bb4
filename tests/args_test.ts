/**
 * The command line: ferry's own strict option parser (src/cli/flags.ts),
 * "did you mean" suggestions (src/cli/suggest.ts), the values' checks and
 * their hints (src/cli/args.ts), and what the real CLI prints for the
 * mistakes a new user makes: one line, a hint that names options the command
 * has, exit 2, never a parser's own words.
 */
import { assertEquals, assertMatch, assertThrows } from "@std/assert";
import { parseCount, parseFlags, parsePort, parseTarget } from "../src/cli/args.ts";
import { UsageError } from "../src/errors.ts";
import { didYouMean, editDistance, suggest } from "../src/cli/suggest.ts";
import { runCli } from "./_harness.ts";
import { SEND_FLAGS } from "../src/subcommands/send.ts";

/** The options of `send`, as src/subcommands/send.ts declares them. */

function parse(...args: string[]) {
  return parseFlags("send", args, SEND_FLAGS);
}

/** The UsageError `parse(...args)` throws, as [message, hint]. */
function refused(...args: string[]): [string, string] {
  const err = assertThrows(() => parse(...args), UsageError);
  return [err.message, err.hint];
}

Deno.test("parseFlags() reads --flag value, --flag=value, -x value, -xvalue and boolean groups", () => {
  assertEquals(parse("a.txt", "--to", "h", "--retries=3", "-x", "*.o", "-xtmp", "-qh", "b"), {
    values: { to: "h", retries: "3", exclude: ["*.o", "tmp"], quiet: true, help: true },
    positionals: ["a.txt", "b"],
  });
  assertEquals(parse("--exclude=a", "--exclude", "b").values.exclude, ["a", "b"]);
  assertEquals(parse("-t=h").values.to, "h");
  assertEquals(parse("--name=").values.name, "");
  assertEquals(parse(), { values: {}, positionals: [] });
});

Deno.test("parseFlags(): '--' ends the options and '-' is a positional (standard input)", () => {
  assertEquals(parse("-", "--name", "dump.sql", "--", "--json", "-q", "-"), {
    values: { name: "dump.sql" },
    positionals: ["-", "--json", "-q", "-"],
  });
});

Deno.test("parseFlags(): a string option takes a next argument that starts with '-'", () => {
  assertEquals(parse("--retries", "-1").values.retries, "-1");
  assertEquals(parse("--name", "-", "-").values.name, "-");
  assertEquals(parse("-x", "-weird-").values.exclude, ["-weird-"]);
  // ...unless that argument is one of the command's options: then the value is missing.
  assertEquals(refused("a", "--to", "--json"), ["--to needs a value", "run 'ferry send --help'"]);
  assertEquals(refused("a", "--to", "-q")[0], "--to needs a value");
  assertEquals(refused("a", "--to", "--")[0], "--to needs a value");
  assertEquals(parse("--name=--json").values.name, "--json");
});

Deno.test("parseFlags(): a missing value, a value for a boolean, a repeated option", () => {
  assertEquals(refused("a", "--to"), ["--to needs a value", "run 'ferry send --help'"]);
  assertEquals(refused("a", "-t")[0], "--to needs a value");
  assertEquals(refused("a", "--json=1"), ["--json takes no value", "run 'ferry send --help'"]);
  assertEquals(refused("a", "-q=1")[0], "--quiet takes no value");
  assertEquals(refused("a", "--to", "h", "--to", "g"), [
    "--to can be given only once",
    "keep the one you mean; run 'ferry send --help'",
  ]);
  assertEquals(refused("a", "--json", "--json")[0], "--json can be given only once");
  assertEquals(refused("a", "-t", "h", "--to=g")[0], "--to can be given only once");
});

Deno.test("parseFlags(): an unknown option says so, with the nearest of the command's own options", () => {
  assertEquals(refused("a", "--bogus"), ["unknown option '--bogus'", "run 'ferry send --help'"]);
  assertEquals(refused("a", "--bogus=1")[0], "unknown option '--bogus'");
  assertEquals(refused("a", "-z"), ["unknown option '-z'", "run 'ferry send --help'"]);
  assertEquals(refused("a", "--retires", "3"), [
    "unknown option '--retires'",
    "did you mean --retries? 'ferry send --help' lists every option",
  ]);
  assertEquals(refused("a", "--tiemout", "9")[1].split("?")[0], "did you mean --timeout");
  assertEquals(refused("a", "--exclud", "x")[1].split("?")[0], "did you mean --exclude");
  assertEquals(refused("a", "--JSON")[1].split("?")[0], "did you mean --json");
  assertEquals(refused("a", "--plain")[1].split("?")[0], "did you mean --plaintext");
  // `send` has no --port: it is never suggested there.
  assertEquals(refused("a", "--port", "5000"), [
    "unknown option '--port'",
    "run 'ferry send --help'",
  ]);
  // A long option written with one dash is not taken as `-t o`.
  assertEquals(refused("a", "-to", "h"), [
    "unknown option '-to'",
    "did you mean --to? 'ferry send --help' lists every option",
  ]);
  const serve = assertThrows(
    () => parseFlags("serve", ["--max-sise", "1G"], { "max-size": { type: "string" } }),
    UsageError,
  );
  assertEquals(serve.hint, "did you mean --max-size? 'ferry serve --help' lists every option");
});

Deno.test("editDistance() counts a swap of neighbours as one edit (Damerau–Levenshtein)", () => {
  assertEquals(editDistance("send", "send"), 0);
  assertEquals(editDistance("sned", "send"), 1);
  assertEquals(editDistance("retires", "retries"), 1);
  assertEquals(editDistance("serv", "serve"), 1);
  assertEquals(editDistance("kitten", "sitting"), 3);
  assertEquals(editDistance("", "abc"), 3);
  assertEquals(editDistance("ca", "abc"), 3); // optimal string alignment, not unrestricted
});

Deno.test("suggest() offers the closest within 2 edits, else what the word abbreviates or extends", () => {
  const commands = ["serve", "send", "help"];
  assertEquals(suggest("sned", commands), ["send"]);
  assertEquals(suggest("serv", commands), ["serve"]);
  assertEquals(suggest("SEND", commands), ["send"]);
  assertEquals(suggest("hlep", commands), ["help"]);
  assertEquals(suggest("frobnicate", commands), []);
  assertEquals(suggest("", commands), []);
  // Short words get 1 edit at most: 2 would match nearly anything.
  assertEquals(suggest("foo", ["to"]), []);
  assertEquals(suggest("ot", ["to"]), ["to"]);
  // Abbreviations and extensions.
  assertEquals(suggest("retr", ["retries", "to"]), ["retries"]);
  assertEquals(suggest("jsonl", ["json", "to"]), ["json"]);
  assertEquals(suggest("max", ["max-size", "max-total", "port"]), ["max-size", "max-total"]);
  assertEquals(didYouMean("sned", commands, (c) => `'${c}'`), "did you mean 'send'?");
  assertEquals(
    didYouMean("max", ["max-a", "max-b", "max-c", "max-d"]),
    "did you mean max-a, max-b or max-c?",
  );
  assertEquals(didYouMean("zzz", commands), null);
});

Deno.test("the value checks' hints name options the command has: --to HOST:PORT for send's port", () => {
  const port = assertThrows(() => parseTarget("host:abc"), UsageError);
  assertEquals(port.message, "the port in --to must be a port number from 1 to 65535, not 'abc'");
  assertEquals(port.hint, "e.g. --to 192.168.1.20:4455, that is --to HOST:PORT");
  assertEquals(assertThrows(() => parseTarget("[::1]:0"), UsageError).hint, port.hint);
  assertEquals(
    assertThrows(() => parseTarget(":4455"), UsageError).hint,
    "e.g. --to 192.168.1.20 or --to 192.168.1.20:4455",
  );
  assertEquals(assertThrows(() => parsePort("x"), UsageError).hint, "e.g. --port 4455");
  assertEquals(
    assertThrows(() => parsePort("0", "--discovery-port"), UsageError).hint,
    "e.g. --discovery-port 4455",
  );
  assertEquals(parseTarget("nas.local:5000"), { host: "nas.local", port: 5000 });
  const count = assertThrows(() => parseCount("-1", "--retries", 0), UsageError);
  assertEquals(count.message, "--retries must be a whole number from 0, not '-1'");
});

Deno.test("ferry prints the new user's mistakes as one line and a hint that fits, exit 2", async () => {
  for (
    const [args, message, hint] of [
      [
        ["send", "a.txt", "--retries", "-1", "--to", "h"],
        "ferry: --retries must be a whole number from 0, not '-1'",
        "(e.g. --retries 10)",
      ],
      [
        ["send", "a.txt", "--to", "host:abc"],
        "ferry: the port in --to must be a port number from 1 to 65535, not 'abc'",
        "(e.g. --to 192.168.1.20:4455, that is --to HOST:PORT)",
      ],
      [
        ["send", "x", "--name", "foo", "--to", "h"],
        "ferry: --name names standard input; add '-' to the paths",
        "(e.g. tar c dir | ferry send - --name dir.tar --to HOST)",
      ],
      [
        ["send", "-", "-", "--to", "h"],
        "ferry: standard input ('-') can be sent only once",
        "(e.g. tar c dir | ferry send - --name dir.tar --to HOST)",
      ],
      [
        ["send", "a.txt", "--json=1", "--to", "h"],
        "ferry: --json takes no value",
        "(run 'ferry send --help')",
      ],
      [
        ["send", "a.txt", "--to", "h", "--to", "g"],
        "ferry: --to can be given only once",
        "(keep the one you mean; run 'ferry send --help')",
      ],
      [
        ["send", "a.txt", "--to", "h", "--retires", "3"],
        "ferry: unknown option '--retires'",
        "(did you mean --retries? 'ferry send --help' lists every option)",
      ],
      [
        ["serve", "--prot", "5000"],
        "ferry: unknown option '--prot'",
        "(did you mean --port? 'ferry serve --help' lists every option)",
      ],
      [
        ["sned", "a.txt"],
        "ferry: unknown command 'sned'",
        "(did you mean 'send'? 'ferry help' lists the commands)",
      ],
      [["frobnicate"], "ferry: unknown command 'frobnicate'", "(run 'ferry help')"],
    ] as const
  ) {
    const result = await runCli([...args]);
    assertEquals(result.code, 2, args.join(" "));
    assertEquals(result.stdout, "", args.join(" "));
    assertEquals(result.stderr, `${message}\n${hint}\n`, args.join(" "));
  }
});

Deno.test("ferry send --json: a mistake is one usage error object, in ferry's words", async () => {
  const result = await runCli(["send", "a.txt", "--to", "h", "--json", "--retries", "-1"]);
  assertEquals(result.code, 2);
  assertEquals(result.stderr, "");
  assertEquals(JSON.parse(result.stdout), {
    type: "error",
    code: "usage",
    message: "--retries must be a whole number from 0, not '-1'",
    hint: "e.g. --retries 10",
  });
  const ambiguous = await runCli(["send", "a.txt", "--json", "--to", "--quiet"]);
  assertEquals(ambiguous.code, 2);
  assertMatch(ambiguous.stdout, /^\{"type":"error","code":"usage","message":"--to needs a value",/);
});
