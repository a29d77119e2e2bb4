/**
 * Which way a session reaches DIR's folders (folders.ts says why there are
 * two): through descriptors where the C library is there, else by path.
 */
import { BeneathFolders } from "./beneath.ts";
import type { Folders } from "./folders.ts";
import type { Inbox } from "./inbox.ts";
import { PathFolders } from "./path_folders.ts";

/** A session's view of `inbox`'s folders. */
export function openFolders(inbox: Inbox): Folders {
  return inbox.native === null ? new PathFolders(inbox) : new BeneathFolders(inbox, inbox.native);
}
