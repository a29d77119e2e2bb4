/**
 * An inbox whose fsyncs always run in place, as on tmpfs or a fast disk: only then does a small
 * file take the C library's calls (src/server/small_file.ts), and a loaded test machine's disk
 * may otherwise send them to the thread pool (src/server/fsync_pace.ts).
 */
import { FsyncPace } from "../src/server/fsync_pace.ts";
import type { Inbox } from "../src/server/inbox.ts";

/** `inbox`, its fsyncs run in place from now on. */
export function fsyncsInPlace(inbox: Inbox): Inbox {
  (inbox as { fsyncPace: FsyncPace }).fsyncPace = new class extends FsyncPace {
    override inline(): boolean {
      return true;
    }
  }();
  return inbox;
}
