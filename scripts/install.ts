/**
 * `deno task install [--prefix DIR]` and `deno task uninstall [--prefix DIR]`: a `ferry` command
 * for this user, from this clone, that runs with no Deno on the PATH and never asks a registry.
 *
 * Install puts everything under PREFIX (default `~/.local`, or the PREFIX environment variable):
 *
 *   PREFIX/bin/ferry              a POSIX sh script that runs the two below
 *   PREFIX/lib/ferry/deno         a copy of the Deno running this script (from npx or anywhere)
 *   PREFIX/lib/ferry/app/         main.ts, src/, deno.json, deno.lock of this clone
 *   PREFIX/lib/ferry/cache/       a private Deno cache (DENO_DIR) holding ferry's npm packages
 *   PREFIX/lib/ferry/INSTALLED.json   the marker: what install made, so uninstall removes that only
 *
 * The command runs `deno run --cached-only -P=ferry` (deno.json's permission set, no prompt) with
 * that cache, so no run needs the network or npx; FERRY_LAUNCHER=installed makes the serve banner
 * print `ferry send ...`. Running install again upgrades in place: the new Deno and source are
 * staged next to the old ones and renamed over them, so a ferry that is running keeps going.
 *
 * Install refuses to replace a PREFIX/bin/ferry or a PREFIX/lib/ferry it did not write, and
 * uninstall removes only what the marker says install made (folders it created, if empty again).
 * A first install that fails leaves nothing behind; an upgrade that cannot fetch the packages
 * leaves the earlier install as it was.
 *
 * Exit codes: 0 done (also: nothing to uninstall), 1 failed or refused, 2 usage.
 */
import { dirname, isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { PERMISSION_SET_NAME } from "../src/cli/permission_set.ts";
import { SEND_V8_FLAGS, V8_FLAGS } from "../src/cli/v8_flags.ts";
import { VERSION } from "../src/version.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** What ferry needs to run, relative to the clone: copied to PREFIX/lib/ferry/app. */
export const APP_FILES = ["main.ts", "src", "deno.json", "deno.lock"] as const;
export const MARKER = "INSTALLED.json";
/** In the marker and in the command's second line: how uninstall knows they are install's. */
export const INSTALLER_TAG = "ferry scripts/install.ts";
export const DEFAULT_REGISTRY = "https://registry.npmjs.org/";
const USAGE = "usage: deno task install [--prefix DIR]   |   deno task uninstall [--prefix DIR]";

/** The paths of an install under `prefix`. */
export function layout(prefix: string) {
  const lib = join(prefix, "lib", "ferry");
  return {
    prefix,
    bin: join(prefix, "bin"),
    command: join(prefix, "bin", "ferry"),
    lib,
    deno: join(lib, "deno"),
    app: join(lib, "app"),
    cache: join(lib, "cache"),
    marker: join(lib, MARKER),
  };
}
export type Layout = ReturnType<typeof layout>;

/** What the marker records. */
export interface Marker {
  installer: typeof INSTALLER_TAG;
  ferry: string;
  deno: string;
  prefix: string;
  /** The folders install created (of PREFIX, PREFIX/bin, PREFIX/lib): removed again if empty. */
  created: string[];
  /** The npm registry the cache was filled from; the command pins it (see wrapperScript). */
  registry: string;
  installed: string;
}

/** `value` as one word for a POSIX shell: in single quotes, a `'` as `'\''`. */
export function shQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/** `value` for a command line shown to people: quoted only if the shell would need it. */
export function shWord(value: string): string {
  return /^[\w@%+=:,./~-]+$/.test(value) ? value : shQuote(value);
}

/**
 * The text of PREFIX/bin/ferry. It sets the environment of the private Deno and `exec`s it:
 * DENO_DIR is the private cache, and NPM_CONFIG_REGISTRY the registry the cache was filled from,
 * because Deno keeps npm packages by registry and one set differently when ferry runs would find
 * nothing in the cache. `--cached-only`: never the network; `-P=ferry`: the shipped permission
 * set, from the installed deno.json; `--no-prompt`: a missing permission fails instead of asking.
 */
export function wrapperScript(paths: Layout, registry: string): string {
  return [
    "#!/bin/sh",
    `# ferry ${VERSION}: written by ${INSTALLER_TAG} (deno task install); remove with`,
    "# 'deno task uninstall' in a clone of ferry, with the same --prefix.",
    `lib=${shQuote(paths.lib)}`,
    'DENO_DIR="$lib/cache"',
    "DENO_NO_UPDATE_CHECK=1",
    "FERRY_LAUNCHER=installed",
    `NPM_CONFIG_REGISTRY=${shQuote(registry)}`,
    "export DENO_DIR DENO_NO_UPDATE_CHECK FERRY_LAUNCHER NPM_CONFIG_REGISTRY",
    // The V8 flags of the subcommand (src/cli/v8_flags.ts), as the deno.json tasks give them.
    `v8=${shQuote(V8_FLAGS)}`,
    `[ "$1" = send ] && v8=${shQuote(SEND_V8_FLAGS)}`,
    [
      'exec "$lib/deno" run --quiet --no-prompt --cached-only',
      '--config "$lib/app/deno.json"',
      `-P=${PERMISSION_SET_NAME} "$v8"`,
      '"$lib/app/main.ts" "$@"',
    ].join(" "),
    "",
  ].join("\n");
}

/** True when `text` is a command install wrote for the install in `lib`. */
export function isOurWrapper(text: string, lib: string): boolean {
  const lines = text.split("\n");
  return lines[0] === "#!/bin/sh" && (lines[1] ?? "").includes(`written by ${INSTALLER_TAG}`) &&
    lines.includes(`lib=${shQuote(lib)}`);
}

class Usage extends Error {}
class Refusal extends Error {}

function env(name: string): string | undefined {
  const value = Deno.env.get(name);
  return value === undefined || value === "" ? undefined : value;
}

/** The prefix: `--prefix DIR`, else $PREFIX, else ~/.local; `~/` expanded, relative to INIT_CWD. */
export function parseArgs(args: string[]): { prefix: string; explicit: boolean } {
  let given: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!; // i < args.length
    if (arg === "--prefix" || arg.startsWith("--prefix=")) {
      const value = arg === "--prefix" ? args[++i] : arg.slice("--prefix=".length);
      if (value === undefined || value === "") throw new Usage(`--prefix needs a folder; ${USAGE}`);
      given = value;
    } else if (arg === "--help" || arg === "-h") {
      throw new Usage(USAGE);
    } else {
      throw new Usage(`unexpected argument '${arg}'; ${USAGE}`);
    }
  }
  const home = env("HOME");
  let prefix = given ?? env("PREFIX");
  if (prefix === undefined) {
    if (home === undefined) throw new Usage(`HOME is not set: give --prefix DIR; ${USAGE}`);
    prefix = join(home, ".local");
  }
  if (prefix === "~" || prefix.startsWith("~/")) {
    if (home === undefined) throw new Usage(`HOME is not set, so '${prefix}' means nothing`);
    prefix = home + prefix.slice(1);
  }
  // `deno task` runs in the clone; a relative prefix is meant from where it was typed.
  const cwd = env("INIT_CWD") ?? Deno.cwd();
  prefix = isAbsolute(prefix) ? resolve(prefix) : resolve(cwd, prefix);
  return { prefix, explicit: given !== undefined || env("PREFIX") !== undefined };
}

async function lstat(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.lstat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

/** The marker at `paths.marker`, or null if there is none; throws Refusal if it is not ours. */
async function readMarker(paths: Layout): Promise<Marker | null> {
  const info = await lstat(paths.marker);
  if (info === null) return null;
  let marker: Partial<Marker> = {};
  try {
    if (info.isFile) marker = JSON.parse(await Deno.readTextFile(paths.marker));
  } catch { /* not JSON: not ours */ }
  if (marker.installer !== INSTALLER_TAG) {
    throw new Refusal(`${paths.marker} was not written by ferry's installer; leaving it alone`);
  }
  return marker as Marker;
}

/** Makes `dir` and its missing parents; returns the ones it made, outermost first. */
async function makeDirs(dir: string): Promise<string[]> {
  const missing: string[] = [];
  for (let at = dir; (await lstat(at)) === null; at = dirname(at)) {
    missing.unshift(at);
    if (dirname(at) === at) break;
  }
  for (const path of missing) await Deno.mkdir(path);
  return missing;
}

/** Copies a file or a folder tree (regular files and folders; links are left out). */
async function copyTree(from: string, to: string): Promise<void> {
  const info = await Deno.lstat(from);
  if (info.isDirectory) {
    await Deno.mkdir(to);
    for await (const entry of Deno.readDir(from)) {
      await copyTree(join(from, entry.name), join(to, entry.name));
    }
  } else if (info.isFile) {
    await Deno.copyFile(from, to);
  }
}

/** The bytes under `path`. */
async function treeSize(path: string): Promise<number> {
  const info = await Deno.lstat(path);
  if (!info.isDirectory) return info.size;
  let total = 0;
  for await (const entry of Deno.readDir(path)) total += await treeSize(join(path, entry.name));
  return total;
}

/** The names in the folder `dir`; none if it is not there. */
async function names(dir: string): Promise<string[]> {
  const found: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) found.push(entry.name);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return found;
}

/** Removes `path` (recursively) if it is there. */
async function removeIfThere(path: string): Promise<void> {
  try {
    await Deno.remove(path, { recursive: true });
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}

/** Removes the folder `path` if it is empty; true if it was removed or was not there. */
async function removeIfEmpty(path: string): Promise<boolean> {
  try {
    await Deno.remove(path);
    return true;
  } catch (err) {
    return err instanceof Deno.errors.NotFound;
  }
}

/** Runs a program to completion; returns its exit code and output, decoded. */
async function run(
  program: string,
  args: string[],
  extraEnv: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(program, {
    args,
    env: { NO_COLOR: "1", ...extraEnv },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

/** How this script was started, so that the uninstall line printed runs the same way. */
function taskCommand(name: string, prefix: string, explicit: boolean): string {
  const deno = /[/\\]_npx[/\\]/.test(Deno.execPath())
    ? `npx -y deno@${Deno.version.deno} task`
    : "deno task";
  return `${deno} ${name}${explicit ? ` --prefix ${shWord(prefix)}` : ""}`;
}

/** Where `name` is found first on the PATH, if anywhere. */
async function onPath(name: string): Promise<string | null> {
  for (const dir of (env("PATH") ?? "").split(":")) {
    if (dir === "") continue;
    const info = await lstat(join(dir, name)).catch(() => null);
    if (info !== null && !info.isDirectory) return join(dir, name);
  }
  return null;
}

async function realPath(path: string): Promise<string> {
  try {
    return await Deno.realPath(path);
  } catch {
    return path;
  }
}

/** What to tell a person whose PATH does not have `bin`: the line that adds it, for their shell. */
function pathAdvice(bin: string): string {
  const home = env("HOME");
  const shown = home !== undefined && bin.startsWith(`${home}/`)
    ? `$HOME${bin.slice(home.length)}`
    : bin;
  const shell = (env("SHELL") ?? "").split("/").pop();
  if (shell === "fish") return `  fish_add_path ${shWord(bin)}`;
  const rc = shell === "zsh" ? "~/.zshrc" : shell === "bash" ? "~/.bashrc" : "~/.profile";
  return `  echo 'export PATH="${shown.replaceAll("'", `'\\''`)}:$PATH"' >> ${rc}` +
    `   # then open a new terminal`;
}

function formatSize(bytes: number): string {
  return `${Math.round(bytes / 1e6)} MB`;
}

/**
 * Copies Deno and the source in, fills the cache, writes the command and runs it once; returns
 * what `ferry --version` printed. The new Deno and source are staged beside the old ones (the
 * cache is filled from the staged source) and then renamed over them, so a ferry running from
 * the old ones is not disturbed and a failure before the renames changes nothing.
 */
async function putInPlace(paths: Layout, registry: string): Promise<string> {
  const stamp = `new-${Deno.pid}`;
  const denoNew = `${paths.deno}.${stamp}`;
  const appNew = `${paths.app}.${stamp}`;
  try {
    await removeIfThere(denoNew);
    await removeIfThere(appNew);
    await Deno.copyFile(Deno.execPath(), denoNew);
    await Deno.chmod(denoNew, 0o755);
    await Deno.mkdir(appNew);
    for (const name of APP_FILES) await copyTree(join(ROOT, name), join(appNew, name));
    const cached = await run(
      denoNew,
      ["cache", "--quiet", "--config", join(appNew, "deno.json"), join(appNew, "main.ts")],
      { DENO_DIR: paths.cache, DENO_NO_UPDATE_CHECK: "1", NPM_CONFIG_REGISTRY: registry },
    );
    if (cached.code !== 0) {
      throw new Error(
        `could not fetch ferry's npm packages from ${registry} into ${paths.cache}:\n` +
          cached.stderr.trimEnd(),
      );
    }
  } catch (err) {
    await removeIfThere(denoNew);
    await removeIfThere(appNew);
    throw err;
  }
  // Swap them in.
  await Deno.rename(denoNew, paths.deno);
  const appOld = `${paths.app}.old-${Deno.pid}`;
  const hadApp = (await lstat(paths.app)) !== null;
  if (hadApp) await Deno.rename(paths.app, appOld);
  await Deno.rename(appNew, paths.app);
  if (hadApp) await removeIfThere(appOld);
  const commandNew = join(paths.bin, `.ferry.${stamp}`);
  await Deno.writeTextFile(commandNew, wrapperScript(paths, registry));
  await Deno.chmod(commandNew, 0o755);
  await Deno.rename(commandNew, paths.command);

  // Run it once as people will: it must print its version without fetching anything.
  const check = await run(paths.command, ["--version"]);
  const version = check.stdout.trim();
  if (check.code !== 0 || version !== `ferry ${VERSION}`) {
    throw new Error(
      `${paths.command} --version printed '${version}' (exit ${check.code}), ` +
        `not 'ferry ${VERSION}':\n${check.stderr.trimEnd()}`,
    );
  }
  return version;
}

export async function install(prefix: string, explicit: boolean): Promise<number> {
  if (Deno.build.os === "windows") {
    throw new Refusal(
      "the installed command is a POSIX sh script; on Windows use the standalone ferry.exe " +
        "(docs/STANDALONE.md)",
    );
  }
  const paths = layout(prefix);
  // Refuse before touching anything: a ferry in bin or a lib/ferry that another tool made.
  const existing = await lstat(paths.command);
  if (existing !== null) {
    const text = existing.isFile ? await Deno.readTextFile(paths.command).catch(() => "") : "";
    if (!isOurWrapper(text, paths.lib)) {
      throw new Refusal(
        `${paths.command} is there and was not written by this installer (a standalone ferry?); ` +
          `remove it yourself, or install with another --prefix`,
      );
    }
  }
  const libInfo = await lstat(paths.lib);
  if (libInfo !== null && (!libInfo.isDirectory || libInfo.isSymlink)) {
    throw new Refusal(`${paths.lib} is there and is not a folder install made; leaving it alone`);
  }
  const marker = libInfo === null ? null : await readMarker(paths);
  if (libInfo !== null && marker === null) {
    throw new Refusal(
      `${paths.lib} is there without ${MARKER}, so this installer did not make it; ` +
        `leaving it alone (remove it yourself, or install with another --prefix)`,
    );
  }
  const upgrade = marker !== null;
  const registry = env("NPM_CONFIG_REGISTRY") ?? marker?.registry ?? DEFAULT_REGISTRY;

  const created = [
    ...await makeDirs(paths.bin),
    ...await makeDirs(paths.lib),
  ].filter((dir) => dir !== paths.lib);
  const next: Marker = {
    installer: INSTALLER_TAG,
    ferry: VERSION,
    deno: Deno.version.deno,
    prefix,
    created: [...new Set([...(marker?.created ?? []), ...created])],
    registry,
    installed: new Date().toISOString(),
  };
  const writeMarker = async () => {
    const tmp = `${paths.marker}.new-${Deno.pid}`;
    await Deno.writeTextFile(tmp, JSON.stringify(next, null, 2) + "\n");
    await Deno.rename(tmp, paths.marker);
  };
  // A first install writes the marker first, so that one cut short can be removed by uninstall.
  if (!upgrade) await writeMarker();
  let version: string;
  try {
    version = await putInPlace(paths, registry);
  } catch (err) {
    // A first install that failed leaves nothing behind; an upgrade keeps what worked before.
    if (!upgrade) await uninstall(prefix, true).catch(() => {});
    throw err;
  }
  if (upgrade) await writeMarker();

  console.log(
    `${upgrade ? "upgraded" : "installed"} ${version} (Deno ${Deno.version.deno}) in ${prefix}`,
  );
  console.log(`  command: ${paths.command}`);
  console.log(`  files:   ${paths.lib} (${formatSize(await treeSize(paths.lib))})`);
  const bins = await Promise.all(
    (env("PATH") ?? "").split(":").filter((d) => d !== "").map(realPath),
  );
  if (bins.includes(await realPath(paths.bin))) {
    const first = await onPath("ferry");
    if (first !== null && (await realPath(first)) !== (await realPath(paths.command))) {
      console.log(
        `${first} comes first on your PATH: run this one as ${shWord(paths.command)}, or ` +
          `put ${paths.bin} before ${dirname(first)}`,
      );
    } else {
      console.log(`${paths.bin} is on your PATH: run 'ferry serve' and 'ferry send'.`);
    }
  } else {
    console.log(`${paths.bin} is not on your PATH; add it (once) with:`);
    console.log(pathAdvice(paths.bin));
    console.log(`or run it as ${shWord(paths.command)}`);
  }
  console.log(`remove it with: ${taskCommand("uninstall", prefix, explicit)}`);
  console.log(`  (or, without this clone: rm -r ${shWord(paths.lib)} ${shWord(paths.command)})`);
  return 0;
}

export async function uninstall(prefix: string, quiet = false): Promise<number> {
  const say = quiet ? () => {} : console.log;
  const paths = layout(prefix);
  const libInfo = await lstat(paths.lib);
  const marker = libInfo === null || !libInfo.isDirectory || libInfo.isSymlink
    ? null
    : await readMarker(paths);
  if (marker === null) {
    if (libInfo !== null) {
      throw new Refusal(
        `${paths.lib} has no ${MARKER}, so this installer did not make it; leaving it alone`,
      );
    }
    say(`no ferry installed by this installer in ${prefix}: nothing to remove`);
    return 0;
  }
  const command = await lstat(paths.command);
  if (command !== null) {
    const text = command.isFile ? await Deno.readTextFile(paths.command).catch(() => "") : "";
    if (isOurWrapper(text, paths.lib)) {
      await Deno.remove(paths.command);
    } else {
      say(`left ${paths.command}: this installer did not write it`);
    }
  }
  // What install puts in lib/ferry (and what an install cut short leaves); nothing else.
  const ours = (name: string) =>
    ["deno", "app", "cache"].includes(name) ||
    /^(deno|app|INSTALLED\.json)\.(new|old)-\d+$/.test(name);
  for (const name of await names(paths.lib)) {
    if (ours(name)) await Deno.remove(join(paths.lib, name), { recursive: true });
  }
  for (const name of await names(paths.bin)) {
    if (/^\.ferry\.new-\d+$/.test(name)) await Deno.remove(join(paths.bin, name));
  }
  await Deno.remove(paths.marker);
  if (!(await removeIfEmpty(paths.lib))) {
    say(`left ${paths.lib}: it holds files this installer did not put there`);
  }
  // The folders install created, innermost first, if nothing else is in them.
  for (const dir of [...marker.created].sort((a, b) => b.length - a.length)) {
    if (dir === prefix || dir.startsWith(`${prefix}/`)) await removeIfEmpty(dir);
  }
  say(`removed ferry ${marker.ferry} from ${prefix}`);
  return 0;
}

export async function main(args: string[]): Promise<number> {
  const removing = args[0] === "--uninstall";
  let prefix: string;
  let explicit: boolean;
  try {
    ({ prefix, explicit } = parseArgs(removing ? args.slice(1) : args));
  } catch (err) {
    if (!(err instanceof Usage)) throw err;
    if (err.message === USAGE) {
      console.log(USAGE);
      return 0;
    }
    console.error(`${removing ? "uninstall" : "install"}: ${err.message}`);
    return 2;
  }
  try {
    return removing ? await uninstall(prefix) : await install(prefix, explicit);
  } catch (err) {
    const what = removing ? "uninstall" : "install";
    console.error(`${what}: ${err instanceof Error ? err.message : err}`);
    return 1;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
