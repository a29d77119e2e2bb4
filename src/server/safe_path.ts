/**
 * Validation of the relative file names a receiver gets from the network.
 *
 * A wire name is untrusted: it may be any JSON value, written by any peer.
 * Before the receiver creates anything under its target directory DIR, the
 * name must be proven to stay inside DIR and to mean the same file on every
 * operating system ferry runs on. Each rule below exists for one of those two
 * reasons:
 *
 * No traversal (the name must stay inside DIR):
 * - a leading `/` would make the name absolute;
 * - `..` components climb out of DIR, and `.` components are refused too, so
 *   that only normalized names are accepted and two spellings never name the
 *   same file;
 * - a backslash is a separator on Windows, so `..\x`, `C:\x` and
 *   `\\server\share` would escape there; it is refused everywhere;
 * - a first component like `C:` or `c:foo` names a drive (or the current
 *   directory of a drive) on Windows;
 * - empty components (`a//b`, a trailing `/`, `//server/share`) are not
 *   normalized and some of them are UNC or absolute paths on Windows;
 * - the first component may not be the hidden staging folder (".ferry"), where
 *   the receiver keeps partial files; a peer must not be able to touch it.
 *
 * Portability (the name must be writable, and mean one file, on any receiver):
 * - the name must be well-formed Unicode: a lone UTF-16 surrogate has no
 *   UTF-8 encoding, so it would be silently replaced and names could collide;
 * - control characters (C0, DEL, C1) are refused: NUL ends C strings, and the
 *   others are forbidden on Windows or garble terminals and logs;
 * - Windows reserves device names (CON, NUL, COM1, ...) in every directory,
 *   whatever the extension;
 * - Windows strips a trailing dot or space from a component, so `a.` and `a`
 *   would collide;
 * - components longer than 255 UTF-8 bytes, or whole paths longer than
 *   MAX_PATH_BYTES, do not fit common file systems; very deep paths are
 *   refused to bound the work of creating directories;
 * - a Windows receiver also refuses `< > : " | ? *`, which its file systems
 *   cannot store. Other receivers accept them.
 *
 * Refusal reasons are short lowercase phrases for logs and error messages.
 * They never echo control characters from the name.
 */

import { MAX_COMPONENT_BYTES, MAX_PATH_BYTES, MAX_PATH_DEPTH } from "../protocol/limits.ts";

/** Options for {@link checkName}. */
export interface NameRules {
  /** Apply the extra rules of a Windows receiver (forbid < > : " | ? * in any component). */
  windows: boolean;
  /** Largest path in UTF-8 bytes; defaults to MAX_PATH_BYTES. */
  maxPathBytes?: number;
  /** Largest number of components; defaults to MAX_PATH_DEPTH. */
  maxDepth?: number;
}

/** The result of {@link checkName}: the components, or why the name is refused. */
export type NameCheck = { ok: true; parts: string[] } | { ok: false; reason: string };

/** The name of the hidden staging folder in DIR; a wire name whose first component equals it (case-insensitively) is refused. */
export const STAGING_DIR_NAME = ".ferry";

/** Windows device names, matched against a component's part before its first dot. */
const RESERVED_DEVICE = /^(CON|PRN|AUX|NUL|COM[0-9¹²³]|LPT[0-9¹²³]|CONIN\$|CONOUT\$)$/i;
/** The lower-case letters (char codes) that RESERVED_DEVICE's names start with. */
const DEVICE_INITIALS = new Set([..."cpanl"].map((c) => c.charCodeAt(0)));
/** A first component that names a Windows drive. */
const DRIVE_LETTER = /^[A-Za-z]:/;
/** Characters a Windows file system cannot store in a name. */
const WINDOWS_FORBIDDEN = /[<>:"|?*]/;

/** Validates a wire name; on success returns its components. */
export function checkName(name: unknown, rules: NameRules): NameCheck {
  const maxPathBytes = rules.maxPathBytes ?? MAX_PATH_BYTES;
  const maxDepth = rules.maxDepth ?? MAX_PATH_DEPTH;

  if (typeof name !== "string") return refuse("not a string");
  if (name === "") return refuse("empty name");
  if (!name.isWellFormed()) return refuse("not valid Unicode");
  if (hasControlCharacter(name)) return refuse("contains a control character");
  if (name.includes("\\")) return refuse("contains a backslash");
  if (name.startsWith("/")) return refuse("absolute path");
  if (utf8Length(name) > maxPathBytes) return refuse(`path longer than ${maxPathBytes} bytes`);

  const parts = name.split("/");
  const top = parts[0]!; // split() returns at least one part
  if (parts.length > maxDepth) return refuse(`path deeper than ${maxDepth} levels`);
  if (DRIVE_LETTER.test(top)) return refuse("drive letter");
  if (top.toLowerCase() === STAGING_DIR_NAME) {
    return refuse("reserved for ferry's staging folder");
  }
  for (const part of parts) {
    const reason = componentProblem(part, rules.windows);
    if (reason !== undefined) return refuse(reason);
  }
  return { ok: true, parts };
}

/** Why one component is refused, or undefined if it is fine. */
function componentProblem(part: string, windows: boolean): string | undefined {
  if (part === "") return "empty component";
  if (part === ".") return "contains a '.' component";
  if (part === "..") return "contains '..'";
  if (utf8Length(part) > MAX_COMPONENT_BYTES) {
    return `component longer than ${MAX_COMPONENT_BYTES} bytes`;
  }
  const device = reservedDeviceName(part);
  if (device !== undefined) return `reserved name '${device}'`;
  if (part.endsWith(".") || part.endsWith(" ")) return "trailing dot or space";
  if (windows) {
    const forbidden = WINDOWS_FORBIDDEN.exec(part);
    if (forbidden !== null) return `contains '${forbidden[0]}', not allowed on windows`;
  }
  return undefined;
}

/**
 * The Windows device a component names (upper-cased, e.g. "CON"), or
 * undefined. Windows ignores the extension and spaces before it, so
 * "aux .txt" is AUX.
 */
function reservedDeviceName(part: string): string | undefined {
  // Every device name starts with C, P, A, N or L (an ASCII letter, which no other character
  // matches case-insensitively): most components are ruled out without cutting them.
  if (!DEVICE_INITIALS.has(part.charCodeAt(0) | 0x20)) return undefined;
  const dot = part.indexOf(".");
  const base = (dot === -1 ? part : part.slice(0, dot)).replace(/ +$/, "");
  return RESERVED_DEVICE.test(base) ? base.toUpperCase() : undefined;
}

/** True if `s` has a C0 control (U+0000–U+001F), DEL (U+007F) or a C1 control (U+0080–U+009F). */
function hasControlCharacter(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x1f || (c >= 0x7f && c <= 0x9f)) return true;
  }
  return false;
}

/**
 * Length of a well-formed string in UTF-8 bytes (a lone surrogate counts 3, as its code point
 * would). By UTF-16 code units, without an iterator for every name.
 */
function utf8Length(s: string): number {
  let bytes = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (isHighSurrogate(c) && isLowSurrogate(s.charCodeAt(i + 1))) {
      bytes += 4; // a pair: one code point beyond U+FFFF
      i++;
    } else bytes += 3;
  }
  return bytes;
}

function isHighSurrogate(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}

function isLowSurrogate(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}

function refuse(reason: string): NameCheck {
  return { ok: false, reason };
}
