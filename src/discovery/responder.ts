/**
 * The server's side of discovery: listens for QUERY datagrams on UDP (port
 * 4455 by default) and answers each well-formed one with one small ANSWER.
 *
 * It only ever answers: a datagram that is not exactly a query (size,
 * magic, version, zero padding) is dropped unread, the answer is never
 * larger than the query, queries from privileged source ports (below 1024,
 * where reflection would hurt other services) are ignored, and answers are
 * rate-limited per source address and overall.
 */
import dgram from "node:dgram";
import { Buffer } from "node:buffer";
import { decodeQuery, DISCOVERY_GROUP, encodeAnswer, QUERY_BYTES } from "./discovery_protocol.ts";

export interface ResponderOptions {
  /** UDP port to listen on. */
  port: number;
  /** Address to listen on: "0.0.0.0" to hear broadcasts, or a loopback address. */
  host: string;
  /** What to answer: name, addresses, TCP port, whether it listens on all addresses, whether open. */
  answer: () => { name: string; addresses: string[]; port: number; any: boolean; open: boolean };
  /** Join the multicast group on these interface addresses (IPv4; undefined: the default one). */
  multicastInterfaces?: (string | undefined)[];
}

/** A token bucket: `burst` at once, refilled at `perSecond`. */
export class RateLimit {
  #tokens: number;
  #at: number;
  constructor(
    readonly burst: number,
    readonly perSecond: number,
    readonly now: () => number = () => performance.now(),
  ) {
    this.#tokens = burst;
    this.#at = now();
  }

  take(): boolean {
    const t = this.now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((t - this.#at) / 1000) * this.perSecond);
    this.#at = t;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

/** Overall and per-source answer budgets. */
const TOTAL_BURST = 32;
const TOTAL_PER_SECOND = 16;
const SOURCE_BURST = 4;
const SOURCE_PER_SECOND = 2;
const MAX_SOURCES = 1024;

export class DiscoveryResponder {
  #socket: dgram.Socket;
  #total = new RateLimit(TOTAL_BURST, TOTAL_PER_SECOND);
  #perSource = new Map<string, RateLimit>();
  #closed = false;
  /** Queries answered and dropped, for tests and curiosity. */
  readonly stats = { answered: 0, dropped: 0 };

  private constructor(socket: dgram.Socket, readonly opts: ResponderOptions) {
    this.#socket = socket;
    socket.on("message", (msg: Uint8Array, rinfo: dgram.RemoteInfo) => this.#onQuery(msg, rinfo));
    // A failed send (an ICMP error, a full buffer) is nothing to stop for.
    socket.on("error", () => {});
  }

  /** Starts listening; fails (rejects) if the port cannot be bound. */
  static start(opts: ResponderOptions): Promise<DiscoveryResponder> {
    const socket = dgram.createSocket({ type: "udp4", reuseAddr: true });
    return new Promise((resolve, reject) => {
      const failed = (err: Error) => {
        try {
          socket.close();
        } catch { /* not open */ }
        reject(err);
      };
      socket.once("error", failed);
      socket.bind(opts.port, opts.host, () => {
        socket.off("error", failed);
        for (const iface of opts.multicastInterfaces ?? []) {
          try {
            socket.addMembership(DISCOVERY_GROUP, iface);
          } catch { /* that interface cannot do multicast */ }
        }
        resolve(new DiscoveryResponder(socket, opts));
      });
    });
  }

  get port(): number {
    return this.#socket.address().port;
  }

  #onQuery(msg: Uint8Array, rinfo: dgram.RemoteInfo): void {
    if (this.#closed) return;
    if (msg.length !== QUERY_BYTES || rinfo.port < 1024 || !this.#allowed(rinfo.address)) {
      this.stats.dropped++;
      return;
    }
    const query = decodeQuery(msg);
    if (query === null) {
      this.stats.dropped++;
      return;
    }
    let answer: Uint8Array;
    try {
      answer = encodeAnswer({ nonce: query.nonce, ...this.opts.answer() });
    } catch {
      this.stats.dropped++;
      return;
    }
    if (answer.length > msg.length) return; // cannot happen: answers are at most 219 bytes
    this.stats.answered++;
    this.#socket.send(Buffer.from(answer), rinfo.port, rinfo.address, () => {});
  }

  #allowed(source: string): boolean {
    let limit = this.#perSource.get(source);
    if (!limit) {
      if (this.#perSource.size >= MAX_SOURCES) this.#perSource.clear();
      limit = new RateLimit(SOURCE_BURST, SOURCE_PER_SECOND);
      this.#perSource.set(source, limit);
    }
    // The per-source budget first, so one noisy source cannot drain the overall one.
    return limit.take() && this.#total.take();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#socket.close();
    } catch { /* already closed */ }
  }
}
