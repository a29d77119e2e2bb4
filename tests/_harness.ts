/**
 * Shared test harness: temp dirs, an in-process server, the real CLI as a
 * child process, tree snapshots, and a raw protocol client for adversarial
 * tests.
 */
import { createHash } from "node:crypto";
import { join, relative } from "node:path";
import { FerryServer, type ServerOptions } from "../src/server/server.ts";
import type { ServerEvent } from "../src/server/session.ts";
import { FrameType, type FrameTypeCode } from "../src/protocol/frame.ts";
import { encodeJson } from "../src/protocol/messages.ts";
import type { DigestName } from "../src/protocol/digests.ts";
import { Channel, encodePreamble, PROTOCOL_VERSION } from "../src/protocol/preamble.ts";
import { type Frame, FrameReader, FrameWriter } from "../src/transport/frame_io.ts";
import { type ChannelKeys, senderKeyExchange, senderOpen } from "../src/transport/channel.ts";
import { SecureStream } from "../src/transport/secure_stream.ts";
import type { ByteStream } from "../src/transport/byte_stream.ts";
import { DEFAULT_LIMITS, type ServerLimits } from "../src/server/server_limits.ts";
import { send, type SendEvent, type SendResult } from "../src/client/send_session.ts";
import { resolveSources } from "../src/client/walk.ts";
import { SHIPPED_PERMISSIONS } from "./_permissions.ts";

export const MAIN = new URL("../main.ts", import.meta.url).pathname;
/** The code test servers are started with. */
export const TEST_CODE = "1234-test-code-word";

export async function tempDir(prefix = "ferry-test-"): Promise<string> {
  return await Deno.makeTempDir({ prefix });
}

export interface TestServer {
  server: FerryServer;
  port: number;
  dir: string;
  events: ServerEvent[];
  close(): Promise<void>;
}

/** Starts a server in this process on a free port of 127.0.0.1. */
export async function startServer(
  dir: string,
  opts: Partial<Omit<ServerOptions, "limits">> & { limits?: Partial<ServerLimits> } = {},
): Promise<TestServer> {
  const events: ServerEvent[] = [];
  const server = await FerryServer.start({
    dir,
    host: "127.0.0.1",
    port: 0,
    onConflict: "rename",
    software: "ferry/test",
    code: TEST_CODE,
    onEvent: (e) => events.push(e),
    ...opts,
    limits: { ...DEFAULT_LIMITS, handshakeTimeoutMs: 5_000, idleTimeoutMs: 10_000, ...opts.limits },
  });
  return {
    server,
    port: server.port,
    dir,
    events,
    async close() {
      server.close();
      await server.done;
    },
  };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the real CLI (`deno run main.ts ...`) to completion, with the shipped
 * permission set unless `permissions` lists the flags to run it with.
 */
export async function runCli(
  args: string[],
  opts: {
    stdin?: Uint8Array;
    cwd?: string;
    env?: Record<string, string>;
    permissions?: string[];
  } = {},
): Promise<CliResult> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", ...(opts.permissions ?? SHIPPED_PERMISSIONS), MAIN, ...args],
    stdin: opts.stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
    cwd: opts.cwd,
    env: { NO_COLOR: "1", FERRY_CODE: TEST_CODE, ...opts.env },
  }).spawn();
  if (opts.stdin) {
    const writer = child.stdin.getWriter();
    await writer.write(opts.stdin);
    await writer.close();
  }
  const out = await child.output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

export interface ServeProcess {
  port: number;
  child: Deno.ChildProcess;
  /** Everything printed so far on stdout and stderr. */
  output(): string;
  /** Everything printed so far on stdout. */
  stdout(): string;
  stop(signal?: Deno.Signal): Promise<CliResult>;
}

/**
 * Starts `ferry serve` as a child process on a free port and waits until
 * `ready` says its output shows it is up (by default: the banner).
 */
export async function spawnServe(
  dir: string,
  extra: string[] = [],
  ready: (stdout: string) => boolean = (out) => out.includes("listening on port"),
  env: Record<string, string> = {},
): Promise<ServeProcess> {
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      ...SHIPPED_PERMISSIONS,
      MAIN,
      "serve",
      dir,
      "--port",
      String(port),
      "--host",
      "127.0.0.1",
      ...extra,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", FERRY_CODE: TEST_CODE, ...env },
  }).spawn();
  let stdout = "";
  let stderr = "";
  const decoder = new TextDecoder();
  const pump = async (stream: ReadableStream<Uint8Array>, add: (s: string) => void) => {
    for await (const chunk of stream) add(decoder.decode(chunk, { stream: true }));
  };
  const pumping = Promise.all([
    pump(child.stdout, (s) => stdout += s),
    pump(child.stderr, (s) => stderr += s),
  ]);
  const deadline = Date.now() + 15_000;
  while (!ready(stdout)) {
    if (Date.now() > deadline) throw new Error(`serve did not start:\n${stdout}\n${stderr}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    port,
    child,
    output: () => stdout + stderr,
    stdout: () => stdout,
    async stop(signal: Deno.Signal = "SIGTERM") {
      try {
        child.kill(signal);
      } catch { /* already gone */ }
      const status = await child.status;
      await pumping;
      return { code: status.code, stdout, stderr };
    },
  };
}

export interface SendInProcessOptions {
  /** The code to give (default TEST_CODE; null: none). */
  code?: string | null;
  plaintext?: boolean;
  retries?: number;
  /** The digests to offer (default: all, xxh128 first). */
  digests?: DigestName[];
  /** Collects every event the sender reports. */
  events?: SendEvent[];
}

/** Sends `paths` from this process to 127.0.0.1:`port`, as `ferry send` would. */
export async function sendInProcess(
  port: number,
  paths: string[],
  opts: SendInProcessOptions = {},
): Promise<SendResult> {
  return await send({
    to: { host: "127.0.0.1", port },
    sources: await resolveSources(paths, "stdin"),
    connectTimeoutMs: 5000,
    idleTimeoutMs: 10_000,
    retries: opts.retries ?? 0,
    retryDelayMs: 20,
    software: "ferry/test",
    code: opts.code === undefined ? TEST_CODE : opts.code,
    plaintext: opts.plaintext,
    digests: opts.digests,
    onEvent: (e) => opts.events?.push(e),
  });
}

/** A port that was free a moment ago. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

export interface TreeEntry {
  kind: "file" | "dir" | "link";
  /** SHA-256 of a file's content. */
  sha256?: string;
  size?: number;
  mtime?: number;
  mode?: number;
}

/** Every entry below `root` (relative path → what it is), skipping ferry's staging folder. */
export async function snapshot(
  root: string,
  opts: { includeStaging?: boolean } = {},
): Promise<Record<string, TreeEntry>> {
  const out: Record<string, TreeEntry> = {};
  const visit = async (dir: string) => {
    for await (const e of Deno.readDir(dir)) {
      const abs = join(dir, e.name);
      const rel = relative(root, abs).split("\\").join("/");
      if (!opts.includeStaging && rel === ".ferry") continue;
      const info = await Deno.lstat(abs);
      if (info.isSymlink) out[rel] = { kind: "link" };
      else if (info.isDirectory) {
        out[rel] = { kind: "dir", mtime: info.mtime?.getTime(), mode: info.mode! & 0o7777 };
        await visit(abs);
      } else {
        const data = await Deno.readFile(abs);
        out[rel] = {
          kind: "file",
          size: data.length,
          sha256: createHash("sha256").update(data).digest("hex"),
          mtime: info.mtime?.getTime(),
          mode: info.mode! & 0o7777,
        };
      }
    }
  };
  await visit(root);
  return out;
}

/** Paths of the regular files and directories below `root`, sorted. */
export async function listTree(root: string, opts: { includeStaging?: boolean } = {}) {
  return Object.keys(await snapshot(root, opts)).sort();
}

/** A raw client that speaks (or mis-speaks) the protocol, for adversarial tests. */
export class RawClient {
  reader: FrameReader;
  writer: FrameWriter;
  /** What frames run on: the connection, then the secure channel after `handshake()`. */
  stream: ByteStream;

  private constructor(readonly conn: Deno.TcpConn) {
    this.reader = new FrameReader(conn);
    this.writer = new FrameWriter(conn);
    this.stream = conn;
  }

  static async connect(port: number): Promise<RawClient> {
    return new RawClient(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  /** Connects, sends preamble and HELLO, and reads the preamble and WELCOME. */
  static async open(port: number): Promise<RawClient> {
    const client = await RawClient.connect(port);
    await client.handshake();
    return client;
  }

  /**
   * Preamble, the secure channel on `code` (the test servers' code unless
   * given), then HELLO; returns the WELCOME frame (or whatever came instead).
   * Afterwards `reader`/`writer` run inside the channel's records.
   */
  async handshake(
    version = PROTOCOL_VERSION,
    opts: { code?: string | null; features?: string[]; digests?: string[]; transfer?: string } = {},
  ): Promise<Frame | null> {
    if (!(await this.channel({ version, code: opts.code }))) return null;
    await this.send(
      FrameType.HELLO,
      encodeJson({
        software: "raw-test",
        digests: opts.digests ?? ["sha256"],
        features: opts.features ?? [],
        ...(opts.transfer === undefined ? {} : { transfer: opts.transfer }),
      }),
    );
    return await this.reader.next();
  }

  /**
   * Preamble and the secure channel only (no HELLO): afterwards whatever is
   * sent goes inside records. False if the server closed before its preamble.
   */
  async channel(
    opts: { version?: number; code?: string | null; preamble?: Uint8Array } = {},
  ): Promise<boolean> {
    const keys = await this.exchangeKeys(opts);
    if (keys === null) return false;
    const stream = new SecureStream(
      this.conn,
      keys.sealer,
      keys.opener,
      this.reader.takeBuffered(),
    );
    await this.writer.flush();
    this.reader = new FrameReader(stream);
    this.writer = new FrameWriter(stream);
    this.stream = stream;
    return true;
  }

  /**
   * Preamble and key exchange up to the receiver's KEY_SHARE; our KEY_CONFIRM
   * is left in the writer, unsent. Null if the server closed before its
   * preamble.
   */
  async exchangeKeys(
    opts: { version?: number; code?: string | null; preamble?: Uint8Array } = {},
  ): Promise<ChannelKeys | null> {
    const ours = opts.preamble ??
      encodePreamble({ version: opts.version ?? PROTOCOL_VERSION, channel: Channel.cpace });
    const open = senderOpen();
    await this.writer.raw(ours);
    await this.writer.frame(FrameType.CHANNEL_OPEN, open.payload);
    await this.writer.flush();
    const theirs = await this.reader.readRaw(8);
    if (theirs === null) return null;
    return await senderKeyExchange(this.reader, this.writer, {
      senderPreamble: ours,
      receiverPreamble: theirs,
      nonce: open.nonce,
      code: opts.code === undefined ? TEST_CODE : opts.code,
    });
  }

  async raw(bytes: Uint8Array): Promise<void> {
    await this.writer.raw(bytes);
    await this.writer.flush();
  }

  async send(type: FrameTypeCode, payload: Uint8Array): Promise<void> {
    await this.writer.frame(type, payload);
    await this.writer.flush();
  }

  async json(type: FrameTypeCode, value: unknown): Promise<void> {
    await this.send(type, encodeJson(value));
  }

  /** The next frame with its payload copied and, if JSON, parsed; null at end of stream. */
  async next(): Promise<{ type: number; payload: Uint8Array; json?: unknown } | null> {
    const frame = await this.reader.next();
    if (frame === null) return null;
    const payload = frame.payload.slice();
    let json: unknown;
    try {
      json = JSON.parse(new TextDecoder().decode(payload));
    } catch { /* binary */ }
    return { type: frame.type, payload, json };
  }

  /** Reads frames until the server closes; returns them. Errors count as the end. */
  async drain(): Promise<{ type: number; json?: unknown }[]> {
    const frames = [];
    try {
      for (;;) {
        const f = await this.next();
        if (f === null) break;
        frames.push(f);
      }
    } catch { /* reset or truncated: the end */ }
    return frames;
  }

  close(): void {
    try {
      this.conn.close();
    } catch { /* already closed */ }
  }
}

/** SHA-256 of `data`, as FILE_END carries it. */
export function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(data).digest());
}

/** Random bytes of any length (crypto.getRandomValues is limited to 64 KiB a call). */
export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) {
    crypto.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
  }
  return out;
}

/** Waits until `check` is true, polling; throws after `ms`. */
export async function waitFor(check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("timed out waiting for a condition");
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Connects as a sender would (preamble, CHANNEL_OPEN), reads the receiver's
 * preamble and first frame, and returns that frame's ERROR code and message:
 * what a receiver that turns a sender away (busy, locked out) says, which
 * ferry's sender does not show, since it is unauthenticated. Null if the
 * first frame is not an ERROR.
 */
export async function readTurnAway(
  port: number,
): Promise<{ code: string; message: string } | null> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const writer = new FrameWriter(conn);
    await writer.raw(encodePreamble({ version: PROTOCOL_VERSION, channel: Channel.cpace }));
    await writer.frame(FrameType.CHANNEL_OPEN, crypto.getRandomValues(new Uint8Array(16)));
    await writer.flush();
    const reader = new FrameReader(conn);
    await reader.readRaw(8);
    const frame = await reader.next();
    if (frame?.type !== FrameType.ERROR) return null;
    return JSON.parse(new TextDecoder().decode(frame.payload));
  } finally {
    conn.close();
  }
}
