/**
 * Which tools can run here: the Debian packages each one needs, installed
 * with apt-get when missing (as root, unless --no-install); a tool that still
 * cannot run is skipped with the reason.
 */
import type { Tool } from "./options.ts";
import { capture, findExecutable, isRoot, lastLine } from "./processes.ts";
import { twistCommand } from "./peers.ts";

export interface ToolSkip {
  tool: Tool;
  reason: string;
}

/** magic-wormhole's client and the two servers the bench starts for it on 127.0.0.1. */
const WORMHOLE_PACKAGES = [
  "magic-wormhole",
  "python3-magic-wormhole-mailbox-server",
  "magic-wormhole-transit-relay",
];

/** The Debian packages a tool needs if it is not usable already, or null. */
async function missingPackages(tool: Tool): Promise<string[] | null> {
  switch (tool) {
    case "ferry":
    case "ferry-plain":
    case "ferry-sha256":
      return null;
    case "nc": {
      const help = await capture("nc", ["-h"]);
      return help.text.includes("OpenBSD netcat") ? null : ["netcat-openbsd"];
    }
    case "rsync":
    case "rsync-fsync":
      return findExecutable("rsync") ? null : ["rsync"];
    case "scp":
      return findExecutable("sshd") && findExecutable("scp") && findExecutable("ssh-keygen")
        ? null
        : ["openssh-server"];
    case "magic-wormhole":
      return findExecutable("wormhole") && await hasWormholeServers() ? null : WORMHOLE_PACKAGES;
  }
}

/** Whether Twisted's `twist` knows the mailbox server's and the transit relay's plugins. */
async function hasWormholeServers(): Promise<boolean> {
  const twist = twistCommand();
  if (twist === null) return false;
  const help = (await capture(twist, ["--help"])).text;
  return help.includes("wormhole-mailbox") && help.includes("transitrelay");
}

/** Installs `packages` with apt-get; returns why it could not, or null. */
async function aptInstall(packages: string[]): Promise<string | null> {
  console.error(`bench: installing ${packages.join(" ")} with apt-get`);
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  const update = await capture("apt-get", ["update", "-qq"], env);
  if (!update.ok) return `apt-get update failed: ${lastLine(update.text)}`;
  const install = await capture(
    "apt-get",
    ["install", "-y", "-qq", "--no-install-recommends", ...packages],
    env,
  );
  return install.ok ? null : `apt-get install failed: ${lastLine(install.text)}`;
}

/** Why `tool` cannot run even though its package is there (e.g. rsync without --fsync). */
async function featureMissing(tool: Tool): Promise<string | null> {
  if (tool !== "rsync-fsync") return null;
  const help = await capture("rsync", ["--help"]);
  return help.text.includes("--fsync")
    ? null
    : `this rsync has no --fsync (${lastLine((await capture("rsync", ["--version"])).text)})`;
}

/** Splits the wanted tools into those that can run and those skipped, with the reason. */
export async function resolvePeers(
  tools: Tool[],
  install: boolean,
): Promise<{ usable: Tool[]; skipped: ToolSkip[] }> {
  const missing = new Map<Tool, string[]>();
  for (const tool of tools) {
    const packages = await missingPackages(tool);
    if (packages !== null) missing.set(tool, packages);
  }
  let installError: string | null = null;
  const packages = [...new Set([...missing.values()].flat())];
  if (packages.length > 0 && !install) installError = "not installed (--no-install)";
  else if (packages.length > 0 && !isRoot()) installError = "not installed, and not root";
  else if (packages.length > 0) installError = await aptInstall(packages);
  const usable: Tool[] = [];
  const skipped: ToolSkip[] = [];
  for (const tool of tools) {
    const needed = missing.get(tool);
    const stillMissing = needed !== undefined && (await missingPackages(tool)) !== null;
    const reason = stillMissing
      ? `needs ${needed.join(", ")}: ${installError ?? "still missing after install"}`
      : await featureMissing(tool);
    if (reason === null) usable.push(tool);
    else skipped.push({ tool, reason });
  }
  return { usable, skipped };
}
