/** The benches' command-line options: `--name value` pairs and bare `--name` flags, read from process.argv. */

/** True when `--name` is on the command line. */
export const flag = (name: string): boolean => process.argv.includes(`--${name}`)

/** The value after `--name`, or `fallback` when the option is absent (or last, with no value after it). */
export function opt(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback
}

/** `--name` as a number >= 0; throws a clear error for anything else, rather than running the bench with NaN. */
export function num(name: string, fallback: number): number {
  const v = Number(opt(name, String(fallback)))
  if (!Number.isFinite(v) || v < 0) throw new Error(`--${name} wants a number >= 0, got ${opt(name, '')}`)
  return v
}
