/** The help texts: `ferry help`, `ferry serve --help`, `ferry send --help`. */
import { VERSION } from "../version.ts";

export const MAIN_HELP =
  `ferry ${VERSION}: move files between machines on a LAN, verified end to end.

Usage:
  ferry serve [DIR] [options]   receive files into DIR (default ./inbox)
  ferry send PATH... [options]  send files, folders or standard input (-) to
                                --to HOST[:PORT], or to the server on the LAN
  ferry help [COMMAND]          show help
  ferry --version               show the version

Examples:
  ferry serve ~/incoming
  ferry send report.pdf photos/ --to 192.168.1.20
  ferry send report.pdf        (no --to: finds the server on the LAN)
  tar c src | ferry send - --name src.tar --to laptop.local:5000

Every file is checked (length and digest) before it gets its final name, and
nothing is ever written outside DIR. Exit codes: 0 ok, 1 failure, 2 usage.
Run 'ferry serve --help' or 'ferry send --help' for the options.
`;

export const SERVE_HELP = `Usage: ferry serve [DIR] [options]

Receives files into DIR (default ./inbox, created if missing) and keeps
serving until stopped with Ctrl+C. Names that already exist are never
overwritten unless you ask: by default a new copy is kept as 'name (1).ext'.

Options:
  -p, --port PORT         port to listen on (default 4455)
      --host ADDRESS      address to listen on (default ::, every address,
                          IPv6 and IPv4; 0.0.0.0 for IPv4 only)
      --on-conflict MODE  when a name exists: rename (default), overwrite,
                          skip, fail, or update (sync like rsync: a file of
                          the same size and time is left as it is and not
                          sent, any other is replaced once the new one is
                          verified; nothing is ever deleted)
      --keep-partial AGE  keep data of interrupted transfers for resuming this
                          long (default 24h; e.g. 90m, 7d)
      --code CODE         the code senders must give (default: FERRY_CODE, or
                          a new one, shown at start); other users see a
                          command line, so prefer FERRY_CODE. Codes that
                          are easy to guess are refused
      --ask               ask before taking each session: who sends (address
                          and host name), how many files and bytes, the first
                          names; answer y or n. Declined (or no answer), the
                          sender is told and nothing is written. Needs a
                          terminal, or --json (questions as JSON objects,
                          answers as JSON lines on standard input)
      --ask-timeout SECONDS  no answer this long declines (default 45, most
                          300)
      --open              accept senders without a code (still encrypted)
      --plaintext         with --open, also accept unencrypted senders
                          (benchmarks on a trusted link only)
      --no-discovery      do not answer 'ferry send' looking for servers
      --discovery-port PORT  UDP port discovery answers on (default 4455)
      --web               also serve a page that sends from any browser (a
                          phone): its address and a QR code are shown at start
      --web-port PORT     TCP port of the page (default 4456)
  -q, --quiet             print only errors
      --json              one JSON object per line on stdout (see docs/JSON.md)
  -h, --help              show this help

On a terminal, each running session shows a progress line; otherwise (a pipe,
a log or NO_COLOR set) there is a line per finished session. Either way a file
stored under another name gets a line of its own (a.txt → a (1).txt); --quiet
prints only errors.

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
  ferry serve /srv/backup --on-conflict update
                                    sync: sending again sends what changed
  ferry serve ~/in --ask            asks y/n before each sender's files
  FERRY_CODE="$(cat /etc/ferry/code)" ferry serve /srv/drop
                                    a fixed code of your own, not shown
  ferry serve --json > serve.log    machine-readable events
  ferry serve --no-discovery        only senders that know the address

Firewall: let in TCP port 4455 (or --port) for transfers and UDP port 4455
(or --discovery-port) for discovery; with --web, TCP port 4456 (or --web-port)
for the page.
`;

export const SEND_HELP = `Usage: ferry send PATH... [--to HOST[:PORT]] [options]
       ferry send --text TEXT [--to HOST[:PORT]] [options]

Sends files and folders (recursively, empty ones included; a folder keeps its
own name on the receiver, as with 'cp -r') to a running 'ferry serve'. Use '-'
as PATH to send standard input. Symbolic links are skipped, not followed, and
a receiving folder's staging area (.ferry) is never sent. Exits 0 only if
every file arrived and was verified. Run the same command again after an
interruption and only what is missing is sent.

Without --to, ferry looks for servers on the local network (UDP broadcast
and multicast to port 4455, for about 2 s): if one answers it is used; if
several do, you are asked which (on a terminal) or they are listed (exit 1).

Options:
  -t, --to HOST[:PORT]    the receiver (port 4455 if not given)
  -c, --code CODE         the receiver's code, as 'ferry serve' shows it
                          (default: FERRY_CODE; on a terminal ferry asks
                          for it when the receiver needs one). Other users
                          see a command line, so prefer those two. With a
                          code, ferry sends only to a receiver that proves
                          it (never to 'serve --open')
      --plaintext         no encryption (the receiver must run --open
                          --plaintext); for benchmarks on a trusted link only
      --digest NAME       each file's end-to-end check: xxh128 (default;
                          XXH3-128, as rsync uses: fast, and the encrypted
                          channel still stops tampering) or sha256
                          (cryptographic; --json then gives each file's)
      --checksum          with a receiver run with '--on-conflict update':
                          compare files by content (the digest) instead of
                          size and time, like rsync -c; reads every file on
                          both sides. Refused by a receiver too old for it
  -n, --name NAME         the name for standard input (default 'stdin')
      --text TEXT         send TEXT as a message instead of files (no PATH):
                          the receiver prints it, nothing is stored there.
                          At most 64 KiB (65536 bytes) of UTF-8
  -x, --exclude GLOB      leave out what matches (repeatable): '*.tmp' and
                          'node_modules' match names anywhere, 'photos/raw/**'
                          matches paths; '*' and '?' stop at '/', '**' does
                          not, [a-z] is a set; a trailing '/' means folders only
      --retries N         reconnect this many times after a dropped connection,
                          resuming where it stopped (default 5)
      --timeout SECONDS   give up on a silent receiver after this long
                          (default 60)
  -q, --quiet             print only errors and the summary
      --json              one JSON object per line on stdout (see docs/JSON.md)
  -h, --help              show this help

On a terminal, a progress line shows the bytes and files done out of the
total, the rate, the time left and the current file. Otherwise (a pipe, a
log, NO_COLOR set or --quiet) there is one line per file and a summary.

Environment:
  FERRY_CODE               the code, if --code is not given
  FERRY_DISCOVERY_ADDRESS  where to look for servers instead of the broadcast
                           addresses: IPv4[:PORT],... e.g. 192.168.1.255

Examples:
  ferry send notes.txt --to 192.168.1.20   (asks for the code on a terminal)
  FERRY_CODE=4821-crane-lotus-oyster ferry send backup.tar --to nas
  ferry send notes.txt                     (no --to: finds the server)
  ferry send --text "the wifi password is ..." --to laptop
  ferry send photos/ videos/ --to nas.local:5000
  ferry send project/ --exclude node_modules --exclude '*.o' --to laptop
  pg_dump db | ferry send - --name db.sql --to backup-host
  ferry send big.iso --to nas --json | jq -c 'select(.type == "summary")'
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
