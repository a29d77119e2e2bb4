/** How numbers are shown to people. */

const UNITS = ["B", "kB", "MB", "GB", "TB", "PB"];

/** Bytes in SI units, as `ls -h --si` and most file managers show them. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < UNITS.length - 1) {
    value /= 1000;
    unit++;
  }
  return unit === 0
    ? `${bytes} B`
    : `${value.toFixed(value < 10 ? 2 : value < 100 ? 1 : 0)} ${UNITS[unit]}`;
}

export function formatSeconds(seconds: number): string {
  return seconds < 10 ? `${seconds.toFixed(2)} s` : `${seconds.toFixed(1)} s`;
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/**
 * How many of `files` stored were new and how many replaced one (`update`), and how many were
 * unchanged, when a sync replaced or kept any: ", 1 new, 2 updated, 97 unchanged".
 */
export function syncCounts(files: number, updated: number, unchanged: number): string {
  if (updated === 0 && unchanged === 0) return "";
  return `, ${files - updated} new, ${updated} updated, ${unchanged} unchanged`;
}
