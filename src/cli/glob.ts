/**
 * A small glob matcher for `send --exclude`: `*` (any characters but `/`),
 * `**` (any characters, `/` included; `**\/` also matches no folder at
 * all), `?` (one character but `/`), `[abc]`, `[a-z]`, `[!a-z]` or `[^a-z]`
 * (one character of a set), and `\x` (x itself). A pattern that ends with
 * `/` matches folders only.
 */
import { UsageError } from "../errors.ts";

export interface Glob {
  pattern: string;
  regex: RegExp;
  /** The pattern ended with `/`: folders only. */
  dirOnly: boolean;
  /** The pattern has a `/` (other than a trailing one): it is matched against paths, not names. */
  anchored: boolean;
}

const SPECIAL = /[.*+?^${}()|[\]\\/]/g;

function escapeChar(c: string): string {
  return c.replace(SPECIAL, "\\$&");
}

/** Compiles a glob; a malformed one (an unclosed `[`, a trailing `\`) is a usage error. */
export function compileGlob(pattern: string, flag = "--exclude"): Glob {
  const bad = (why: string) =>
    new UsageError(`${flag} '${pattern}': ${why}`, `e.g. ${flag} '*.tmp' or ${flag} 'build/**'`);
  if (pattern === "" || pattern === "/") throw bad("an empty pattern");
  if (pattern.length > 4096) throw bad("too long");
  const dirOnly = pattern.endsWith("/");
  const body = dirOnly ? pattern.slice(0, -1) : pattern;
  // `build/**` also matches `build` itself, so the folder is not sent empty.
  const inside = /(^|[^\\])\/\*\*$/.test(body);
  const source = inside ? `${globSource(body.slice(0, -3), bad)}(?:/.*)?` : globSource(body, bad);
  return {
    pattern,
    regex: new RegExp(`^${source}$`, "su"),
    dirOnly,
    anchored: body.includes("/"),
  };
}

function globSource(body: string, bad: (why: string) => Error): string {
  let out = "";
  let i = 0;
  while (i < body.length) {
    const c = body[i]!;
    if (c === "*") {
      if (body[i + 1] === "*") {
        const atStart = i === 0 || body[i - 1] === "/";
        let j = i + 2;
        while (body[j] === "*") j++;
        if (atStart && body[j] === "/") {
          out += "(?:[^/]*(?:/[^/]*)*/)?"; // `**/`: any folders, or none
          i = j + 1;
        } else {
          out += ".*";
          i = j;
        }
      } else {
        out += "[^/]*";
        i++;
      }
    } else if (c === "?") {
      out += "[^/]";
      i++;
    } else if (c === "[") {
      const end = classEnd(body, i);
      if (end < 0) throw bad("an unclosed '['");
      out += classRegex(body.slice(i + 1, end));
      i = end + 1;
    } else if (c === "\\") {
      if (i + 1 >= body.length) throw bad("a trailing '\\'");
      out += escapeChar(body[i + 1]!);
      i += 2;
    } else {
      out += escapeChar(c);
      i++;
    }
  }
  return out;
}

/** The index of the `]` closing the class opened at `start`, or -1. */
function classEnd(s: string, start: number): number {
  let i = start + 1;
  if (s[i] === "!" || s[i] === "^") i++;
  if (s[i] === "]") i++; // a leading `]` is literal
  for (; i < s.length; i++) {
    if (s[i] === "\\") i++;
    else if (s[i] === "]") return i;
  }
  return -1;
}

function classRegex(inner: string): string {
  let negate = false;
  let i = 0;
  if (inner[0] === "!" || inner[0] === "^") {
    negate = true;
    i = 1;
  }
  let set = "";
  for (; i < inner.length; i++) {
    let c = inner[i]!;
    if (c === "\\" && i + 1 < inner.length) c = inner[++i]!;
    if (c === "-" && set !== "" && i + 1 < inner.length) {
      set += "-";
      continue;
    }
    set += c === "-" ? "\\-" : c.replace(/[\]\\^]/g, "\\$&");
  }
  // A class never matches `/`.
  return negate ? `[^/${set}]` : `(?!/)[${set}]`;
}

/**
 * Decides whether an entry is excluded. `path` is the entry's path as sent
 * (it starts with the top-level name, e.g. `photos/2024/a.jpg`), `within`
 * its path inside the source given on the command line (`2024/a.jpg`; empty
 * for the source itself). A pattern without `/` matches any name along the
 * way (the entry's base name); one with `/` matches `path` or `within`.
 */
export class Excluder {
  readonly globs: Glob[];
  constructor(patterns: string[]) {
    this.globs = patterns.map((p) => compileGlob(p));
  }

  get empty(): boolean {
    return this.globs.length === 0;
  }

  excludes(path: string, within: string, isDir: boolean): boolean {
    const name = path.slice(path.lastIndexOf("/") + 1);
    for (const glob of this.globs) {
      if (glob.dirOnly && !isDir) continue;
      if (glob.anchored) {
        if (glob.regex.test(path) || (within !== "" && glob.regex.test(within))) return true;
      } else if (glob.regex.test(name)) {
        return true;
      }
    }
    return false;
  }
}
