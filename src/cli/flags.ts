/**
 * The command-line parser of the subcommands: strict (an unknown option, a
 * missing value or a value where none belongs is a usage error with a hint),
 * and every message is ferry's own.
 *
 * - `--name value`, `--name=value`, `-n value`, `-nvalue`; boolean short
 *   options combine (`-qh`);
 * - `--` ends the options: everything after it is a positional;
 * - `-` is a positional (standard input);
 * - a string option takes the next argument as its value even when it starts
 *   with `-` (`--retries -1` reaches the check of the number), unless that
 *   argument is one of the command's own options (`--to --json`): then the
 *   value is missing, and `--name=--json` is the way to give such a value;
 * - a boolean option takes no value (`--json=1` is refused);
 * - an option given twice is refused, unless it is `multiple`.
 */
import { UsageError } from "../errors.ts";
import { didYouMean } from "./suggest.ts";

/** One option of a command: `--NAME`, with a value or not, `-X` for short. */
export interface FlagSpec {
  readonly type: "string" | "boolean";
  /** One character: `-X`. */
  readonly short?: string;
  /** May be given more than once; the values are collected in order. */
  readonly multiple?: boolean;
}

export type FlagSpecs = Readonly<Record<string, FlagSpec>>;

type FlagValue<S extends FlagSpec> = S["type"] extends "boolean" ? boolean : string;

/** The options given: each absent when not on the command line. */
export type FlagValues<O extends FlagSpecs> = {
  -readonly [K in keyof O]?: O[K]["multiple"] extends true ? FlagValue<O[K]>[] : FlagValue<O[K]>;
};

export interface ParsedFlags<O extends FlagSpecs> {
  values: FlagValues<O>;
  positionals: string[];
}

/** Parses `args` for `command`; every mistake becomes a UsageError with a hint. */
export function parseFlags<O extends FlagSpecs>(
  command: string,
  args: readonly string[],
  options: O,
): ParsedFlags<O> {
  const help = `run 'ferry ${command} --help'`;
  const names = Object.keys(options);
  const byShort = new Map<string, string>();
  for (const name of names) {
    const short = options[name]!.short;
    if (short !== undefined) byShort.set(short, name);
  }
  const values: Record<string, string | boolean | (string | boolean)[]> = {};
  const positionals: string[] = [];

  /** An unknown option; a long one gets the command's options nearest to it as a hint. */
  const unknown = (given: string, word: string | null) => {
    const guess = word === null ? null : didYouMean(word, names, (name) => `--${name}`);
    return new UsageError(
      `unknown option '${given}'`,
      guess === null ? help : `${guess} 'ferry ${command} --help' lists every option`,
    );
  };
  const set = (name: string, value: string | boolean) => {
    if (options[name]!.multiple) {
      const list = values[name];
      if (Array.isArray(list)) list.push(value);
      else values[name] = [value];
    } else if (Object.hasOwn(values, name)) {
      throw new UsageError(`--${name} can be given only once`, `keep the one you mean; ${help}`);
    } else {
      values[name] = value;
    }
  };
  /** Whether `arg` is one of this command's options (so not a value that starts with '-'). */
  const isOption = (arg: string) => {
    if (arg === "--") return true;
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      return Object.hasOwn(options, arg.slice(2, eq === -1 ? undefined : eq));
    }
    return arg.length === 2 && arg[0] === "-" && byShort.has(arg[1]!);
  };
  /** The value of string option `name` from the argument after index `i`. */
  const next = (name: string, i: number): string => {
    const value = args[i + 1];
    if (value === undefined || isOption(value)) {
      throw new UsageError(`--${name} needs a value`, help);
    }
    return value;
  };

  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!; // i < args.length
    if (arg === "--") {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (arg === "-" || !arg.startsWith("-")) {
      positionals.push(arg);
      continue;
    }
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      const name = arg.slice(2, eq === -1 ? undefined : eq);
      if (!Object.hasOwn(options, name)) throw unknown(name === "" ? arg : `--${name}`, name);
      if (options[name]!.type === "boolean") {
        if (eq !== -1) throw new UsageError(`--${name} takes no value`, help);
        set(name, true);
      } else if (eq !== -1) {
        set(name, arg.slice(eq + 1));
      } else {
        set(name, next(name, i));
        i++;
      }
      continue;
    }
    // A long option written with one dash (`-to`) is a mistake, not `-t o`.
    if (Object.hasOwn(options, arg.slice(1)) && arg.length > 2) {
      throw new UsageError(
        `unknown option '${arg}'`,
        `did you mean --${arg.slice(1)}? 'ferry ${command} --help' lists every option`,
      );
    }
    // One or more short options: `-q`, `-qh`, `-x value`, `-xvalue`.
    const chars = [...arg.slice(1)];
    for (let j = 0; j < chars.length; j++) {
      const char = chars[j]!; // j < chars.length
      const name = byShort.get(char);
      if (name === undefined) throw unknown(`-${char}`, null);
      if (options[name]!.type === "boolean") {
        if (chars[j + 1] === "=") throw new UsageError(`--${name} takes no value`, help);
        set(name, true);
        continue;
      }
      const rest = chars.slice(j + 1).join("");
      if (rest !== "") {
        set(name, rest.startsWith("=") ? rest.slice(1) : rest);
      } else {
        set(name, next(name, i));
        i++;
      }
      break;
    }
  }
  return { values: values as FlagValues<O>, positionals };
}
