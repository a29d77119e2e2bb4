/**
 * Protocol limits. Every length and count read from the network is checked
 * against one of these before anything is allocated. docs/PROTOCOL.md lists
 * the same numbers; change both together.
 */

/** Largest frame payload in bytes (control and data frames alike). */
export const MAX_FRAME_PAYLOAD = 1024 * 1024;
/** Bytes in a frame header: u8 type + u32 payload length. */
export const FRAME_HEADER_BYTES = 5;
/** Largest number of entries in one ANNOUNCE batch. */
export const MAX_BATCH_ENTRIES = 4096;
/** Largest path, in UTF-8 bytes, that a receiver accepts. */
export const MAX_PATH_BYTES = 4096;
/** Largest single path component, in UTF-8 bytes. */
export const MAX_COMPONENT_BYTES = 255;
/** Largest number of components in a path. */
export const MAX_PATH_DEPTH = 128;
/** Largest file size the protocol can express: 2^53 - 1. */
export const MAX_FILE_SIZE = Number.MAX_SAFE_INTEGER;
/** Largest entry id. Ids are u32 on the wire. */
export const MAX_ENTRY_ID = 0xffff_ffff;
/** Largest digest length carried in FILE_END. */
export const MAX_DIGEST_BYTES = 64;
/** Batches the sender may announce before their plans come back. */
export const ANNOUNCE_WINDOW = 4;

/** Longest text a "text" entry carries, UTF-8 bytes (PROTOCOL.md §5.15). */
export const MAX_TEXT_BYTES = 64 * 1024;
/** Longest `host` in HELLO, UTF-16 units (PROTOCOL.md §5.2). */
export const MAX_HOST_UNITS = 255;
/**
 * Longest a receiver may hold a session's first PLAN while a person decides whether to take it
 * (PROTOCOL.md §6.5, `serve --ask`), ms. A sender waits at least this long for it.
 */
export const MAX_FIRST_PLAN_DELAY_MS = 300_000;
