/**
 * The receiver's limits, each with a `ferry serve` flag. They can only
 * tighten the protocol's own bounds (src/protocol/limits.ts).
 */
import {
  MAX_BATCH_ENTRIES,
  MAX_FILE_SIZE,
  MAX_FRAME_PAYLOAD,
  MAX_PATH_BYTES,
  MAX_PATH_DEPTH,
} from "../protocol/limits.ts";

export interface ServerLimits {
  /** Sessions at once; more get ERROR "busy". */
  maxConnections: number;
  /** From connection to WELCOME, a fixed deadline (slow handshakes are dropped). */
  handshakeTimeoutMs: number;
  /** A session with no traffic this long is dropped. */
  idleTimeoutMs: number;
  /** Largest control message (JSON frame payload), bytes. */
  maxMessage: number;
  /** Entries per ANNOUNCE. */
  maxBatchEntries: number;
  /** Entries per session. */
  maxEntries: number;
  /** Path length, UTF-8 bytes. */
  maxPathBytes: number;
  /** Path depth, components. */
  maxDepth: number;
  /** Largest file, bytes. */
  maxSize: number;
  /** Largest total of file sizes per session, bytes. */
  maxTotal: number;
  /** Partial files of abandoned transfers are removed after this long. */
  keepPartialMs: number;
}

export const DEFAULT_LIMITS: ServerLimits = {
  maxConnections: 64,
  handshakeTimeoutMs: 10_000,
  idleTimeoutMs: 60_000,
  maxMessage: MAX_FRAME_PAYLOAD,
  maxBatchEntries: MAX_BATCH_ENTRIES,
  maxEntries: 100_000_000,
  maxPathBytes: MAX_PATH_BYTES,
  maxDepth: MAX_PATH_DEPTH,
  maxSize: MAX_FILE_SIZE,
  maxTotal: MAX_FILE_SIZE,
  keepPartialMs: 24 * 3600 * 1000,
};

/**
 * Bounds on connections that have not proved the code yet, so that one host
 * cannot hold every connection slot (`maxConnections`) by opening
 * connections and stalling them. They have no flags: no honest sender comes
 * near them. Hosts are counted by address group (address_group.ts).
 */
export interface PreAuthLimits {
  /** Connections per address group not yet past the key exchange; more get ERROR "busy". */
  perAddress: number;
  /** From connecting to the sender's preamble (its first bytes); a silent connection is closed. */
  firstFrameMs: number;
}

export const DEFAULT_PRE_AUTH: PreAuthLimits = {
  perAddress: 8,
  firstFrameMs: 5_000,
};
