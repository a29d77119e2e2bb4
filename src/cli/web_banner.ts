/**
 * The part of `serve --web`'s banner for browsers: the page's address on each
 * of this machine's addresses, and a QR code of one of them for a phone's
 * camera, printed with Unicode half blocks (@paulmillr/qr). The QR code
 * carries the code in the address's fragment (#code=..., which a browser
 * never sends to the server) only when `code` is given: serve.ts gives it
 * only for a code the banner shows anyway, never one from FERRY_CODE.
 */
import encodeQR from "@paulmillr/qr";

/** The page's address on `address` (IPv6 in brackets). */
export function pageUrl(address: string, port: number): string {
  return `http://${address.includes(":") ? `[${address}]` : address}:${port}/`;
}

export function webBanner(
  addresses: string[],
  port: number,
  code: string | null,
  codeRequired: boolean,
): string {
  const urls = addresses.map((address) => pageUrl(address, port));
  const first = urls[addresses.findIndex((a) => !a.includes(":"))] ?? urls[0]!;
  const target = code === null ? first : `${first}#code=${encodeURIComponent(code)}`;
  const lines = [
    `from a phone or any browser: open the page on TCP port ${port}`,
    ...urls.map((url) => `  ${url}`),
    code !== null
      ? `or scan this QR code of ${first} (it carries the code, too):`
      : `or scan this QR code of ${first}${codeRequired ? " (the page asks for the code)" : ""}:`,
    encodeQR(target, "ascii").trimEnd(),
    "the page comes over plain HTTP: use it on a network you trust (docs/SECURITY.md)",
  ];
  return lines.join("\n");
}
