/**
 * One file being received: written to a staging temp file and hashed as the
 * bytes arrive, then checked (length, digest), given its metadata, fsynced
 * and only then placed under its final name.
 */
import { createHash, type Hash } from "node:crypto";
import type { Entry } from "../protocol/messages.ts";
import type { FileEnd } from "../protocol/frame.ts";
import { writeAll } from "../transport/byte_stream.ts";
import { type ConflictPolicy, type Inbox, Refusal, storageRefusal } from "./inbox.ts";

/** Permission bits a receiver keeps: no setuid, setgid, sticky, group/other write. */
export const KEPT_MODE_BITS = 0o755;

export class IncomingFile {
  received = 0;
  #hash: Hash;
  #closed = false;

  private constructor(
    readonly entry: Entry,
    readonly dir: string,
    readonly name: string,
    readonly tempPath: string,
    readonly file: Deno.FsFile,
    digest: string,
  ) {
    this.#hash = createHash(digest);
  }

  static async create(
    inbox: Inbox,
    entry: Entry,
    dir: string,
    name: string,
    digest: string,
  ): Promise<IncomingFile> {
    const temp = await inbox.createTemp().catch((err) => {
      throw storageRefusal(err);
    });
    return new IncomingFile(entry, dir, name, temp.path, temp.file, digest);
  }

  /** Appends `chunk`; refuses data beyond the declared size or the size cap. */
  async write(chunk: Uint8Array, maxSize: number): Promise<void> {
    const limit = this.entry.size ?? maxSize;
    if (this.received + chunk.length > limit) {
      throw new Refusal(
        this.entry.size === null
          ? `larger than the receiver's limit of ${maxSize} bytes`
          : `the sender sent more than the ${this.entry.size} bytes it announced`,
      );
    }
    this.#hash.update(chunk);
    await writeAll(this.file, chunk).catch((err) => {
      throw storageRefusal(err);
    });
    this.received += chunk.length;
  }

  /**
   * Checks the end against what arrived, applies mtime and mode, fsyncs,
   * and places the file. Returns the final name, or null if skipped.
   */
  async finish(
    end: FileEnd,
    inbox: Inbox,
    policy: ConflictPolicy,
    dirty: Set<string>,
  ): Promise<string | null> {
    const { entry } = this;
    if (entry.size !== null && this.received !== entry.size) {
      throw new Refusal(`received ${this.received} bytes, but ${entry.size} were announced`);
    }
    if (end.length !== this.received) {
      throw new Refusal(
        `received ${this.received} bytes, but the sender says it sent ${end.length}`,
      );
    }
    const digest = new Uint8Array(this.#hash.digest());
    if (!equalBytes(digest, end.digest)) {
      throw new Refusal("digest mismatch: the data was altered in transit");
    }
    try {
      if (Deno.build.os !== "windows") {
        await Deno.chmod(this.tempPath, entry.mode & KEPT_MODE_BITS);
      }
      const mtime = new Date(entry.mtime);
      await this.file.utime(mtime, mtime);
      await this.file.sync();
    } catch (err) {
      throw storageRefusal(err);
    }
    this.#close();
    return await inbox.place(this.tempPath, this.dir, this.name, policy, dirty);
  }

  /** Drops the temp file (after a failure or an abort). */
  async discard(): Promise<void> {
    this.#close();
    await Deno.remove(this.tempPath).catch(() => {});
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.file.close();
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}
