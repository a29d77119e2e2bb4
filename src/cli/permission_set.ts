/**
 * The one permission set ferry runs with, declared once in deno.json
 * (`permissions.ferry`) and used by `deno task serve|send` (`-P=ferry`), the
 * installed `ferry` command, `deno task compile` (permissionFlags()) and the
 * end-to-end tests.
 *
 * At start `serve` and `send` check that every permission of the set was
 * granted (`missingPermissions`): one that is missing fails loudly instead of
 * prompting or quietly turning a feature off (a denied `statfs` once turned
 * the free-space check off without a word). A permission the person denied
 * on purpose (`--deny-ffi`, say) is respected: ferry then does without it,
 * as documented for each.
 *
 * What each is for: net, to listen (serve) and connect (send); read and
 * write, the files sent and the receiving folder; env FERRY_CODE (the code),
 * FERRY_DISCOVERY_ADDRESS (where to look for servers), FERRY_LAUNCHER and
 * INIT_CWD (how ferry was started, and the user's folder under `deno task`);
 * sys networkInterfaces (the addresses the banner lists), hostname (the
 * discovery answer's name, and part of the sender's transfer id so that two
 * machines sending the same paths are not taken for one transfer), uid (a
 * native library not owned by root is loaded only when it is ours) and
 * statfs (the free-space check, and tmpfs detection); ffi, the usual paths
 * of OpenSSL 3's libcrypto and of the GNU C library (src/cli/ffi_permission.ts).
 */
import config from "../../deno.json" with { type: "json" };

export interface PermissionSet {
  read: boolean;
  write: boolean;
  net: boolean;
  env: readonly string[];
  sys: readonly string[];
  ffi: readonly string[];
}

export const PERMISSION_SET_NAME = "ferry";
export const PERMISSION_SET: PermissionSet = config.permissions.ferry;

/** The set as `--allow-*` flags, for `deno compile` (which bakes flags into the binary). */
export function permissionFlags(set: PermissionSet = PERMISSION_SET): string[] {
  const flags: string[] = [];
  if (set.read) flags.push("--allow-read");
  if (set.write) flags.push("--allow-write");
  if (set.net) flags.push("--allow-net");
  if (set.env.length > 0) flags.push(`--allow-env=${set.env.join(",")}`);
  if (set.sys.length > 0) flags.push(`--allow-sys=${set.sys.join(",")}`);
  if (set.ffi.length > 0) flags.push(`--allow-ffi=${set.ffi.join(",")}`);
  return flags;
}

/** Every permission of the set, as Deno.permissions descriptors, with a name for messages. */
function descriptors(set: PermissionSet): [string, Deno.PermissionDescriptor][] {
  const out: [string, Deno.PermissionDescriptor][] = [];
  if (set.read) out.push(["read", { name: "read" }]);
  if (set.write) out.push(["write", { name: "write" }]);
  if (set.net) out.push(["net", { name: "net" }]);
  for (const variable of set.env) out.push([`env ${variable}`, { name: "env", variable }]);
  for (const kind of set.sys) {
    const descriptor = { name: "sys", kind } as Deno.SysPermissionDescriptor;
    out.push([`sys ${kind}`, descriptor]);
  }
  for (const path of set.ffi) out.push([`ffi ${path}`, { name: "ffi", path }]);
  return out;
}

/** The permissions of the set neither granted nor denied on purpose (never prompts). */
export function missingPermissions(set: PermissionSet = PERMISSION_SET): string[] {
  const missing: string[] = [];
  for (const [name, descriptor] of descriptors(set)) {
    const state = Deno.permissions.querySync(descriptor).state;
    if (state === "prompt") missing.push(name);
  }
  return missing;
}
