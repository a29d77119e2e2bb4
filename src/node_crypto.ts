/**
 * node:crypto, loaded on first use. Importing it starts Deno's Node
 * compatibility layer (tens of ms of start-up, docs/PERFORMANCE.md), which an
 * ordinary send does not need: its digest is xxh128, its cipher and its
 * one-shot SHA-256 are OpenSSL's. What does need it calls `nodeCrypto()`:
 * incremental SHA-256 (`--digest sha256`, resume prefixes) and the AEAD
 * fallback without OpenSSL. The page's build (scripts/build_web.ts) puts
 * src/web/node_crypto_browser.ts in its place.
 */
type NodeCrypto = typeof import("node:crypto");

let loaded: NodeCrypto | undefined;

export function nodeCrypto(): NodeCrypto {
  return loaded ??= process.getBuiltinModule("node:crypto");
}
