/**
 * SHA-256, SHA-512 and HMAC-SHA-256 of short inputs: CPace (cpace.ts), the
 * key schedule (key_schedule.ts, with HKDF from hkdf.ts) and a transfer's id.
 * From OpenSSL's one-shot calls where libcrypto loads (src/native/libcrypto.ts),
 * used only after they give the published values below; else from
 * @noble/hashes (short_hashes_noble.ts), imported only then. The results are
 * the same; the difference is a cold process's time: the handshake's dozen
 * hashes cost a sender about 7–12 ms in JavaScript that V8 has not yet
 * optimized, a few hundredths of that in OpenSSL, and a send that needs no
 * npm package does not pay for loading one.
 */
import { bytesToHex } from "../protocol/bytes.ts";
import { type Libcrypto, loadLibcrypto } from "../native/libcrypto.ts";

export interface ShortHashes {
  /** Which build: shown by tests. */
  readonly name: "openssl" | "@noble/hashes";
  sha256(data: Uint8Array): Uint8Array;
  sha512(data: Uint8Array): Uint8Array;
  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array;
}

/**
 * OpenSSL's build, or null where `lib` is null or gives a wrong answer to a
 * published test: SHA-256 and SHA-512 of "abc" (FIPS 180-2 B.1, C.1) and
 * HMAC-SHA-256 of RFC 4231's test case 2 ("what do ya want for nothing?").
 */
export function opensslShortHashes(lib: Libcrypto | null): ShortHashes | null {
  if (lib === null) return null;
  try {
    const md256 = lib.EVP_sha256();
    const md512 = lib.EVP_sha512();
    if (md256 === null || md512 === null) return null;
    const digest = (data: Uint8Array, md: Deno.PointerObject, length: number) => {
      const out = new Uint8Array(length);
      if (lib.EVP_Digest(data, BigInt(data.length), out, null, md, null) !== 1) {
        throw new Error("OpenSSL EVP_Digest failed");
      }
      return out;
    };
    const HMAC = new TextEncoder().encode("HMAC\0");
    const SHA256 = new TextEncoder().encode("SHA256\0");
    const hashes: ShortHashes = {
      name: "openssl",
      sha256: (data) => digest(data, md256, 32),
      sha512: (data) => digest(data, md512, 64),
      hmacSha256(key, data) {
        const out = new Uint8Array(32);
        // An empty array goes to C as a null pointer, which EVP_Q_mac refuses for both at once.
        const done = lib.EVP_Q_mac(
          null,
          HMAC,
          null,
          SHA256,
          null,
          key.length === 0 ? NOTHING : key,
          BigInt(key.length),
          data.length === 0 ? NOTHING : data,
          BigInt(data.length),
          out,
          32n,
          null,
        );
        if (done === null) throw new Error("OpenSSL EVP_Q_mac failed");
        return out;
      },
    };
    return passesKnownAnswers(hashes) ? hashes : null;
  } catch {
    return null;
  }
}

/** Where an empty key or message points (its length says 0). */
const NOTHING = new Uint8Array(1);

let loaded: ShortHashes | undefined;

/**
 * The build: OpenSSL's where libcrypto loads and passes, else @noble/hashes'
 * (imported now). Awaited before the first hash: at start-up
 * (src/cli/ffi_permission.ts), and by each handshake and send.
 */
export async function loadShortHashes(): Promise<ShortHashes> {
  if (loaded !== undefined) return loaded;
  const openssl = opensslShortHashes(loadLibcrypto());
  loaded = openssl ?? (await import("./short_hashes_noble.ts")).nobleShortHashes;
  return loaded;
}

/**
 * The build `loadShortHashes` chose, or OpenSSL's where it loads; throws
 * where neither was (a caller that did not await `loadShortHashes`).
 */
export function shortHashes(): ShortHashes {
  if (loaded !== undefined) return loaded;
  const openssl = opensslShortHashes(loadLibcrypto());
  if (openssl === null) throw new Error("short hashes used before loadShortHashes()");
  return loaded = openssl;
}

export function sha256(data: Uint8Array): Uint8Array {
  return shortHashes().sha256(data);
}

export function sha512(data: Uint8Array): Uint8Array {
  return shortHashes().sha512(data);
}

export function hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
  return shortHashes().hmacSha256(key, data);
}

function passesKnownAnswers(hashes: ShortHashes): boolean {
  const utf8 = (s: string) => new TextEncoder().encode(s);
  const abc = utf8("abc");
  return bytesToHex(hashes.sha256(abc)) ===
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" &&
    bytesToHex(hashes.sha512(abc)) ===
      "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a" +
        "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f" &&
    bytesToHex(hashes.hmacSha256(utf8("Jefe"), utf8("what do ya want for nothing?"))) ===
      "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
}
