/**
 * The sender's side of discovery: sends a QUERY to the broadcast addresses
 * and the multicast group (or to the addresses FERRY_DISCOVERY_ADDRESS
 * names), a few times in case one is lost, and collects the ANSWERs that
 * echo its nonce for about two seconds (less once someone has answered).
 */
import dgram from "node:dgram";
import { Buffer } from "node:buffer";
import { UsageError } from "../errors.ts";
import type { Address } from "../transport/tcp.ts";
import {
  type Answer,
  decodeAnswer,
  DISCOVERY_GROUP,
  DISCOVERY_PORT,
  encodeQuery,
  MAX_ANSWER_BYTES,
  newNonce,
  parseIp,
} from "./discovery_protocol.ts";

/** The environment variable that replaces the default discovery targets. */
export const DISCOVERY_ENV = "FERRY_DISCOVERY_ADDRESS";
/** How long to wait for a first answer. */
export const DISCOVERY_TIMEOUT_MS = 2000;
/** After the first answer, how long to wait for others. */
const SETTLE_MS = 700;
/** When the query is sent again (lost datagrams are common on Wi-Fi). */
const RESEND_AT_MS = [0, 300, 900];

export interface FoundServer {
  /** The server's host name, as it gave it (escape before showing). */
  name: string;
  /** The addresses it says it has. */
  addresses: string[];
  /** Its TCP port. */
  port: number;
  /** The address its answer came from. */
  from: string;
  /** Where to connect: the address the answer came from. */
  to: Address;
  /** It says it asks no code. */
  open: boolean;
}

export interface FindResult {
  servers: FoundServer[];
  /** Open servers that answered and were left out because the sender has a code. */
  ignoredOpen: number;
}

export interface FindOptions {
  targets: Address[];
  timeoutMs?: number;
  settleMs?: number;
  /** The sender has a code: it never picks a server that says it is open. */
  withCode?: boolean;
}

/** Reads an environment variable only if already allowed (never prompts for permission). */
export function readEnv(name: string): string | undefined {
  try {
    const status = Deno.permissions.querySync({ name: "env", variable: name });
    return status.state === "granted" ? Deno.env.get(name) : undefined;
  } catch {
    return undefined;
  }
}

/** Parses `HOST[:PORT],...` (IPv4 addresses) from FERRY_DISCOVERY_ADDRESS. */
export function parseTargets(value: string, port = DISCOVERY_PORT): Address[] {
  const hint = `e.g. ${DISCOVERY_ENV}=192.168.1.255 or ${DISCOVERY_ENV}=127.0.0.1:4455`;
  const targets: Address[] = [];
  for (const item of value.split(",").map((s) => s.trim()).filter((s) => s !== "")) {
    const [host = "", portText, ...rest] = item.split(":");
    const p = portText === undefined ? port : Number(portText);
    const raw = parseIp(host);
    if (
      rest.length > 0 || raw === null || raw.length !== 4 || !Number.isInteger(p) || p < 1 ||
      p > 65535 || (portText !== undefined && !/^\d+$/.test(portText))
    ) {
      throw new UsageError(`${DISCOVERY_ENV} must list IPv4 addresses, not '${item}'`, hint);
    }
    targets.push({ host, port: p });
  }
  if (targets.length === 0) throw new UsageError(`${DISCOVERY_ENV} is empty`, hint);
  return targets;
}

/** The broadcast address of each IPv4 interface (if allowed to list them), without prompting. */
function directedBroadcasts(): string[] {
  try {
    const status = Deno.permissions.querySync({ name: "sys", kind: "networkInterfaces" });
    if (status.state !== "granted") return [];
    const out: string[] = [];
    for (const i of Deno.networkInterfaces()) {
      if (i.family !== "IPv4" || i.address.startsWith("127.")) continue;
      const a = parseIp(i.address);
      const m = parseIp(i.netmask);
      if (a === null || m === null || a.length !== 4 || m.length !== 4) continue;
      if (m.every((b) => b === 255)) continue;
      out.push(a.map((b, k) => (b | (~m[k]! & 0xff))).join("."));
    }
    return [...new Set(out)];
  } catch {
    return [];
  }
}

/** Where queries go: FERRY_DISCOVERY_ADDRESS, else the broadcast addresses and the group. */
export function defaultTargets(): Address[] {
  const env = readEnv(DISCOVERY_ENV);
  if (env !== undefined) return parseTargets(env);
  return [
    { host: "255.255.255.255", port: DISCOVERY_PORT },
    ...directedBroadcasts().map((host) => ({ host, port: DISCOVERY_PORT })),
    { host: DISCOVERY_GROUP, port: DISCOVERY_PORT },
  ];
}

function isLoopback(host: string): boolean {
  return host.startsWith("127.");
}

/**
 * Where to connect to a server that answered from `from`: always `from`
 * itself, so that an answer can send us only to whoever sent it. Null (the
 * answer is ignored) when the addresses it lists do not include `from`: a
 * datagram that names somebody else is a spoof or a misconfiguration. An
 * answer that lists no address, or one from a server listening on all its
 * addresses that came over loopback (only this machine can send that, and
 * such a server lists only its other addresses), is taken as from where it
 * came.
 */
export function connectAddress(answer: Answer, from: string): Address | null {
  const matches = answer.addresses.length === 0 || answer.addresses.includes(from) ||
    (answer.any && isLoopback(from));
  return matches ? { host: from, port: answer.port } : null;
}

/**
 * Asks the LAN; resolves with the servers that answered, each once, in the
 * order they did (with `withCode`, open servers are left out and counted).
 */
export async function findServers(opts: FindOptions): Promise<FindResult> {
  const timeoutMs = opts.timeoutMs ?? DISCOVERY_TIMEOUT_MS;
  const settleMs = opts.settleMs ?? SETTLE_MS;
  const socket = dgram.createSocket({ type: "udp4" });
  const found = new Map<string, FoundServer>();
  const nonce = newNonce();
  const query = Buffer.from(encodeQuery({ nonce }));
  const timers: ReturnType<typeof setTimeout>[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      // Only loopback targets (tests, this machine): stay on loopback.
      const local = opts.targets.every((t) => isLoopback(t.host));
      socket.bind(0, local ? "127.0.0.1" : "0.0.0.0", () => {
        socket.off("error", reject);
        resolve();
      });
    });
    socket.on("error", () => {}); // an ICMP error for one target is no reason to stop
    try {
      socket.setBroadcast(true);
      socket.setMulticastTTL(1);
    } catch { /* sends to those addresses will fail, and others still go */ }
    const ignoredOpen = new Set<string>();
    return await new Promise<FindResult>((resolve) => {
      let settle: ReturnType<typeof setTimeout> | null = null;
      const finish = () => resolve({ servers: [...found.values()], ignoredOpen: ignoredOpen.size });
      socket.on("message", (msg: Uint8Array, rinfo: dgram.RemoteInfo) => {
        if (msg.length > MAX_ANSWER_BYTES) return;
        const answer = decodeAnswer(msg);
        if (answer === null || !sameBytes(answer.nonce, nonce)) return;
        const to = connectAddress(answer, rinfo.address);
        if (to === null) return;
        const key = `${answer.name}\n${answer.port}\n${[...answer.addresses].sort().join(",")}`;
        if (answer.open && opts.withCode) {
          if (ignoredOpen.size < 64) ignoredOpen.add(key);
          return;
        }
        if (found.has(key) || found.size >= 64) return;
        found.set(key, {
          name: answer.name,
          addresses: answer.addresses,
          port: answer.port,
          from: rinfo.address,
          to,
          open: answer.open,
        });
        if (settle === null) {
          settle = setTimeout(finish, settleMs);
          timers.push(settle);
        }
      });
      for (const at of RESEND_AT_MS) {
        if (at >= timeoutMs) break;
        timers.push(setTimeout(() => {
          for (const target of opts.targets) {
            try {
              socket.send(query, target.port, target.host, () => {});
            } catch { /* this target cannot be reached; the others still can */ }
          }
        }, at));
      }
      timers.push(setTimeout(finish, timeoutMs));
    });
  } finally {
    for (const timer of timers) clearTimeout(timer);
    try {
      socket.close();
    } catch { /* already closed */ }
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
