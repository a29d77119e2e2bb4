/** The help texts: `ferry help`, `ferry serve --help`, `ferry send --help`. */
import { VERSION } from "../version.ts";

export const MAIN_HELP =
  `ferry ${VERSION}: move files between machines on a LAN, verified end to end.

Usage:
  ferry serve [DIR] [options]           receive files into DIR (default ./inbox)
  ferry send PATH... --to HOST[:PORT]   send files, folders or standard input (-)
  ferry help [COMMAND]                  show help
  ferry --version                       show the version

Examples:
  ferry serve ~/incoming
  ferry send report.pdf photos/ --to 192.168.1.20
  tar c src | ferry send - --name src.tar --to laptop.local:5000

Every file is checked (length and SHA-256) before it gets its final name, and
nothing is ever written outside DIR. Exit codes: 0 ok, 1 failure, 2 usage.
Run 'ferry serve --help' or 'ferry send --help' for the options.
`;

export const SERVE_HELP = `Usage: ferry serve [DIR] [options]

Receives files into DIR (default ./inbox, created if missing) and keeps
serving until stopped with Ctrl+C. Names that already exist are never
overwritten unless you ask: by default a new copy is kept as 'name (1).ext'.

Options:
  -p, --port PORT         port to listen on (default 4455)
      --host ADDRESS      address to listen on (default 0.0.0.0: all IPv4)
      --on-conflict MODE  when a name exists: rename (default), overwrite,
                          skip or fail
      --keep-partial AGE  keep data of interrupted transfers for resuming this
                          long (default 24h; e.g. 90m, 7d)
  -q, --quiet             print only errors
  -h, --help              show this help

Limits (each refuses what is over it, with a clear reason to the sender):
      --max-size SIZE          largest file (e.g. 10G; default none)
      --max-total SIZE         largest total per session (default none)
      --max-connections N      senders at once; more are told "busy" (default 64)
      --max-entries N          files and folders per session (default 100000000)
      --max-batch N            entries per announced batch (default and most 4096)
      --max-message SIZE       largest control message (default and most 1M)
      --max-path-bytes N       longest path in bytes (default and most 4096)
      --max-depth N            deepest path in folders (default and most 128)
      --timeout SECONDS        drop a sender that stays silent this long (default 60)
      --handshake-timeout SECONDS  time allowed to say hello (default 10)

Examples:
  ferry serve                       receive into ./inbox on port 4455
  ferry serve /srv/drop --port 5000
  ferry serve ~/in --on-conflict skip
`;

export const SEND_HELP = `Usage: ferry send PATH... --to HOST[:PORT] [options]

Sends files and folders (recursively, empty ones included; a folder keeps its
own name on the receiver, as with 'cp -r') to a running 'ferry serve'. Use '-'
as PATH to send standard input. Symbolic links are skipped, not followed.
Exits 0 only if every file arrived and was verified. Run the same command
again after an interruption and only what is missing is sent.

Options:
  -t, --to HOST[:PORT]    the receiver (port 4455 if not given)
  -n, --name NAME         the name for standard input (default 'stdin')
      --retries N         reconnect this many times after a dropped connection,
                          resuming where it stopped (default 5)
      --timeout SECONDS   give up on a silent receiver after this long (default 60)
  -q, --quiet             print only errors and the summary
  -h, --help              show this help

Examples:
  ferry send notes.txt --to 192.168.1.20
  ferry send photos/ videos/ --to nas.local:5000
  pg_dump db | ferry send - --name db.sql --to backup-host
`;

export function helpFor(command: string | undefined): string | null {
  switch (command) {
    case undefined:
      return MAIN_HELP;
    case "serve":
      return SERVE_HELP;
    case "send":
      return SEND_HELP;
    default:
      return null;
  }
}
