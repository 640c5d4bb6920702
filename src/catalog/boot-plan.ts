/**
 * A profile's boot plan: kernel, initrds and args checked once at load, with initrd names resolved. Every first-stage
 * loader renders the same plan (iPXE scripts in src/boot/ipxe-script.ts; GRUB configs for Secure Boot machines).
 *
 * EFI-stub kernels (every x86_64/arm64 distro kernel booted by iPXE under UEFI) load their initrds themselves, by
 * name, from `initrd=<name>` arguments on the command line; without one they boot with no initramfs. iPXE builds older
 * than the 2023 LoadFile2 support (Debian's 2019 build among them) offer no other way. Matchbox passes the profile
 * through unchanged and leaves this to the author (Typhoon writes `--name main` plus `initrd=main`, but its cached
 * profiles drop the `--name` and keep `initrd=main`, which then names nothing). pxebox always makes the pair agree:
 *   1. every initrd gets a name: its `--name`/`-n`, else iPXE's default, the basename of the URL path;
 *   2. an `initrd=X` already in the args that names no initrd is given to the first unnamed initrd (so Typhoon's
 *      cached profiles boot under EFI);
 *   3. every initrd not yet referenced gets `initrd=<name>` inserted before the profile's args, in initrd order.
 * Under BIOS `initrd=` is ignored by iPXE's bzImage loader and by the kernel, so adding it is always safe.
 */
import type { Checked } from './checked.js'

/** One initrd as iPXE will load it. */
export interface PlannedInitrd {
  /** The image name iPXE will give it (explicit --name or URL basename). */
  readonly name: string
  /** URL as written (root-relative or absolute). */
  readonly url: string
  /** iPXE options other than --name, kept in order (e.g. --timeout 5000). */
  readonly options: readonly string[]
  /** Trailing words after the URL (image command line), kept. */
  readonly rest: readonly string[]
}

/** A profile's boot, checked and with initrd names resolved; rendering it is string concatenation. */
export interface BootPlan {
  readonly kernel: string
  readonly initrds: readonly PlannedInitrd[]
  /** Kernel args in final order, including the added `initrd=<name>` ones. */
  readonly args: readonly string[]
}

/** Basename of a URL's path, as iPXE names a downloaded image. */
export function urlBasename(url: string): string {
  const path = url.replace(/[?#].*$/, '')
  const slash = path.lastIndexOf('/')
  return slash >= 0 ? path.slice(slash + 1) : path
}

interface InitrdEntry {
  name?: string
  url: string
  options: string[]
  rest: string[]
}

/** Split one Matchbox initrd entry (`[--name N] [other options] URL [args]`) into its parts. */
function parseInitrdEntry(entry: string): Checked<InitrdEntry> {
  const words = entry.trim().split(/\s+/)
  let name: string | undefined
  const options: string[] = []
  let i = 0
  while (i < words.length && words[i]!.startsWith('-')) {
    const word = words[i]!
    if (word === '--name' || word === '-n') {
      name = words[i + 1]
      if (name === undefined) return { ok: false, errors: [`initrd "${entry}": ${word} needs a value`] }
      i += 2
    } else if (word.startsWith('--name=')) {
      name = word.slice('--name='.length)
      i += 1
    } else if (word === '--timeout' || word === '-t') {
      options.push(word, words[i + 1] ?? '')
      i += 2
    } else {
      options.push(word)
      i += 1
    }
  }
  const url = words[i]
  if (url === undefined || url === '') return { ok: false, errors: [`initrd "${entry}" has no URL`] }
  return { ok: true, value: { ...(name ? { name } : {}), url, options, rest: words.slice(i + 1) } }
}

const INITRD_ARG = /^initrd=(.*)$/

/** Check a profile's boot and resolve initrd names (rules in the module comment). */
export function planBoot(kernel: string, initrd: readonly string[], args: readonly string[]): Checked<BootPlan> {
  const errors: string[] = []
  for (const text of [kernel, ...initrd, ...args]) {
    // A newline would end the kernel line and let a profile inject iPXE commands.
    if (/[\r\n\0]/.test(text)) errors.push(`boot value ${JSON.stringify(text)} contains a line break or NUL`)
  }
  if (/\s/.test(kernel.trim())) errors.push(`kernel "${kernel}" must be a single URL (put arguments in args)`)
  const entries: InitrdEntry[] = []
  for (const p of initrd.map(parseInitrdEntry)) {
    if (p.ok) entries.push(p.value)
    else errors.push(...p.errors)
  }
  if (errors.length > 0) return { ok: false, errors }

  const wordArgs = args.filter((a) => a.trim() !== '')
  const referenced = wordArgs.map((a) => INITRD_ARG.exec(a)?.[1]).filter((n): n is string => n !== undefined && n !== '')
  const explicit = new Set(entries.flatMap((e) => (e.name !== undefined ? [e.name] : [])))
  const unresolved = referenced.filter((n) => !explicit.has(n))
  const names: string[] = entries.map((e) => {
    if (e.name !== undefined) return e.name
    const taken = unresolved.shift()
    return taken ?? urlBasename(e.url)
  })
  names.forEach((n, i) => {
    if (n === '' || /\s/.test(n)) errors.push(`initrd "${initrd[i]}" has no usable name (give it --name)`)
  })
  const seen = new Set<string>()
  for (const n of names) {
    if (seen.has(n)) errors.push(`two initrds are both named "${n}" (give one --name)`)
    seen.add(n)
  }
  if (errors.length > 0) return { ok: false, errors }

  const referencedSet = new Set(referenced)
  const added = names.filter((n) => !referencedSet.has(n)).map((n) => `initrd=${n}`)
  return {
    ok: true,
    value: {
      kernel: kernel.trim(),
      initrds: entries.map((e, i) => ({ name: names[i]!, url: e.url, options: e.options, rest: e.rest })),
      args: [...added, ...wordArgs],
    },
  }
}
