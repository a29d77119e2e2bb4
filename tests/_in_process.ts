/**
 * A ferry server and a ferry sender in the test's own process, on 127.0.0.1:
 * quicker than the CLI, and the server's events can be looked at.
 */
import { FerryServer, type ServerOptions } from "../src/server/server.ts";
import type { ServerEvent } from "../src/server/session.ts";
import type { DigestName } from "../src/protocol/digests.ts";
import { DEFAULT_LIMITS, type ServerLimits } from "../src/server/server_limits.ts";
import { send, type SendEvent, type SendResult } from "../src/client/send_session.ts";
import { resolveSources } from "../src/client/walk.ts";

/** The code test servers are started with (and test senders give). */
export const TEST_CODE = "1234-test-code-word";

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
    ...(opts.plaintext === undefined ? {} : { plaintext: opts.plaintext }),
    digests: opts.digests,
    onEvent: (e) => opts.events?.push(e),
  });
}
