/**
 * GRUB configs for the Secure Boot chain (issue 19): Microsoft-signed shim -> Debian-signed network GRUB
 * (`grubnetx64.efi.signed`) -> the profile's kernel and initrds over TFTP. Pure: text in, text out.
 *
 * What Debian's signed GRUB does (measured under OVMF, shim-signed 1.51+16.1, grub-efi-amd64-signed 2.06-13+deb12u2):
 * its built-in config sources `$prefix/grub.cfg` with `prefix=(tftp,<siaddr of the DHCP ACK>)/grub` and
 * `root=tftp,<siaddr>`, so it asks for `/grub/grub.cfg` and nothing per machine. The answer to that name is
 * `grubBootstrapConfig()`: it turns `$net_default_mac` into the pxelinux-style name `grub.cfg-01-<mac-dashes>` (what
 * newer GRUBs search for themselves, see grub-config-names.ts) and loads that, so one static file serves every
 * machine and pxebox keys the real answer by the MAC in the name. The signed GRUB has no http module: kernel and
 * initrds come over TFTP, from the profile's `/assets/` paths mapped to TFTP `assets/...`.
 *
 * Quoting (GRUB manual, "Shell-like scripting"): words split on space, tab and newline; `{ } | & $ ; < >` are
 * metacharacters; `$` expands variables even inside double quotes; `\` escapes outside quotes; single quotes keep
 * every character literally but cannot contain a single quote. With the regexp module loaded (it is, in
 * grubnetx64) unquoted `*`, `?` and `[` are file-name wildcards. So every value that is not plainly safe is written
 * in single quotes, a `'` inside as `'\''`; line breaks and other control characters are refused (outside quotes a
 * newline ends the command, and no kernel argument needs one). GRUB itself builds the kernel command line
 * from the words (grub-core/lib/cmdline.c): an argument with a space goes in double quotes, so `a b` stays one kernel
 * argument, and it writes `'`, `"` and `\` as `\'`, `\"`, `\\` there, which the kernel does not unescape (measured: the arg
 * `q=a'b"\` reaches /proc/cmdline as `q=a\'b\"\\`). No injection either way, but such a value reads differently
 * under GRUB than under iPXE.
 *
 * Profile args carry iPXE variables (`${mac:hexhyp}` in Ignition URLs); GRUB has no such variables, so pxebox fills
 * them in from what it knows of the machine before quoting (inside single quotes `$` is literal: nothing a profile
 * writes is expanded by GRUB). A variable pxebox cannot fill is an error, not a silent empty string in a URL.
 */
import type { BootPlan } from '../catalog/boot-plan.js'
import type { Checked } from '../catalog/checked.js'
import { absoluteUrl } from './ipxe-script.js'

/** What pxebox knows of the machine a config is for: the values iPXE-style variables in args expand to. */
export interface GrubMachine {
  /** Canonical lowercase colon MAC. */
  readonly mac: string
  /** SMBIOS UUID as pxebox saw it (DHCP option 97), lowercase 8-4-4-4-12. */
  readonly uuid?: string
  readonly serial?: string
  readonly hostname?: string
  readonly domain?: string
  /** The machine's IPv4 address (the DHCP lease). */
  readonly ip?: string
}

/** Where GRUB loads kernel and initrds from. */
export interface GrubTarget {
  /** pxebox's public URL: absolute asset URLs pointing at pxebox itself map to TFTP like root-relative ones. */
  readonly publicUrl: string
  /**
   * pxebox's TFTP address: paths are written `(tftp,<server>)/assets/...`, so the config names its server whatever
   * `$root` is. Undefined: `/assets/...` on `$root`, which Debian's GRUB sets to `tftp,<siaddr>`.
   */
  readonly server?: string
}

/** The platform values iPXE would give on the machines that reach GRUB (UEFI x86-64: shim-grub is x86-64 only). */
const FIXED_VARIABLES: Readonly<Record<string, string>> = { buildarch: 'x86_64', platform: 'efi' }

/** Characters that mean nothing to GRUB's lexer outside quotes: such words are written bare, the rest quoted. */
const SAFE_WORD = /^[A-Za-z0-9_.,:=/+@%-]+$/

/** Control characters: GRUB would end the line (newline) or the kernel would get bytes nobody meant. Tab is fine. */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/

/** One word for a GRUB command line: bare when safe, else in single quotes with `'` written as `'\''`. */
export function grubQuote(word: string): string {
  if (CONTROL.test(word)) throw new Error(`GRUB word ${JSON.stringify(word)} contains a line break or control character`)
  if (SAFE_WORD.test(word)) return word
  return `'${word.replace(/'/g, `'\\''`)}'`
}

/** `echo` of operator-facing text: control characters become `?` so a message can never break the line. */
function grubEcho(text: string): string {
  // eslint-disable-next-line no-control-regex
  return `echo ${grubQuote(text.replace(/[\x00-\x1f\x7f]/g, '?'))}`
}

/** iPXE's setting types as pxebox renders them (ipxe core/settings.c: hex = colon bytes, hexhyp, hexraw). */
function formatMac(mac: string, type: string | undefined): string | undefined {
  switch (type) {
    case undefined:
    case 'hex':
    case 'string':
      return mac
    case 'hexhyp':
      return mac.replace(/:/g, '-')
    case 'hexraw':
      return mac.replace(/:/g, '')
    case 'uristring':
      return encodeURIComponent(mac)
    default:
      return undefined
  }
}

const VARIABLE = /\$\{([A-Za-z0-9_/.-]+)(?::([a-z0-9]+))?\}/g

/**
 * Expand the iPXE variables in one arg with the machine's values. iPXE expands an unset setting to an empty string,
 * and so does this for a known one pxebox has no value for (no serial seen); an unknown name or type is an error.
 */
export function expandIpxeVariables(arg: string, machine: GrubMachine): Checked<string> {
  const errors: string[] = []
  const out = arg.replace(VARIABLE, (whole, rawName: string, type: string | undefined) => {
    const name = rawName.toLowerCase()
    let value: string | undefined
    if (name === 'mac' || name === 'net0/mac' || name === 'netx/mac') {
      value = formatMac(machine.mac, type)
    } else {
      const known: Record<string, string | undefined> = {
        uuid: machine.uuid,
        serial: machine.serial,
        hostname: machine.hostname,
        domain: machine.domain,
        ip: machine.ip,
        'net0/ip': machine.ip,
        'netx/ip': machine.ip,
        ...FIXED_VARIABLES,
      }
      if (name in known && (type === undefined || type === 'string' || type === 'uristring')) {
        const raw = known[name] ?? ''
        value = type === 'uristring' ? encodeURIComponent(raw) : raw
      }
    }
    if (value === undefined) {
      errors.push(`${whole} cannot be filled in for GRUB (pxebox knows mac, uuid, serial, hostname, domain, ip, buildarch, platform)`)
      return whole
    }
    return value
  })
  return errors.length > 0 ? { ok: false, errors } : { ok: true, value: out }
}

/**
 * The TFTP path of a profile's kernel or initrd: root-relative `/assets/x` (or an absolute URL on pxebox's own public
 * URL) becomes `assets/x`. Anything else cannot be loaded by the signed GRUB (no HTTP) and is an error naming it.
 */
export function grubAssetPath(url: string, publicUrl: string): Checked<string> {
  const base = publicUrl.replace(/\/+$/, '')
  const absolute = absoluteUrl(url, publicUrl)
  const rel = absolute.startsWith(`${base}/`) ? absolute.slice(base.length) : undefined
  if (rel === undefined || !rel.startsWith('/assets/')) {
    return { ok: false, errors: [`"${url}" is not under ${base}/assets/: GRUB loads kernel and initrds over TFTP only, from pxebox's assets`] }
  }
  if (/[?#$]/.test(rel)) return { ok: false, errors: [`"${url}": an asset for GRUB cannot carry a query, fragment or variable`] }
  const segments = rel.slice(1).split('/')
  if (segments.some((s) => s === '' || s === '.' || s === '..')) return { ok: false, errors: [`"${url}": empty, . or .. path segment`] }
  return { ok: true, value: segments.join('/') }
}

/** A TFTP path as a GRUB file word: `(tftp,<server>)/<path>` or `/<path>` on `$root`. */
function grubFile(path: string, target: GrubTarget): string {
  if (target.server === undefined) return grubQuote(`/${path}`)
  // The device part is pxebox's own address (an IP literal), only the path is profile data.
  return `(tftp,${target.server})${grubQuote(`/${path}`)}`
}

const INITRD_ARG = /^initrd=(.*)$/

/**
 * The config that boots a profile: one `linux` line (kernel + args), one `initrd` line with every initrd (GRUB's
 * `initrd` takes them all at once; a second `initrd` command would replace the first), `boot`.
 * The `initrd=<name>` args the iPXE plan adds (or the profile wrote) for EFI-stub kernels under iPXE are dropped:
 * GRUB hands the initrds to the kernel itself, and the stub would look for a file of that name and fail.
 * iPXE-only initrd options (`--timeout`) and trailing words have no GRUB meaning and are left out.
 */
export function renderGrubBootConfig(plan: BootPlan, machine: GrubMachine, target: GrubTarget, label: string): Checked<string> {
  const errors: string[] = []
  const kernel = grubAssetPath(plan.kernel, target.publicUrl)
  if (!kernel.ok) errors.push(...kernel.errors)
  const initrds: string[] = []
  for (const initrd of plan.initrds) {
    const path = grubAssetPath(initrd.url, target.publicUrl)
    if (path.ok) initrds.push(path.value)
    else errors.push(...path.errors)
  }
  const names = new Set(plan.initrds.map((i) => i.name))
  const args: string[] = []
  for (const arg of plan.args) {
    const named = INITRD_ARG.exec(arg)?.[1]
    if (named !== undefined && names.has(named)) continue
    const expanded = expandIpxeVariables(arg, machine)
    if (!expanded.ok) {
      errors.push(...expanded.errors)
      continue
    }
    if (CONTROL.test(expanded.value)) errors.push(`arg ${JSON.stringify(expanded.value)} contains a line break or control character`)
    else args.push(expanded.value)
  }
  if (errors.length > 0 || !kernel.ok) return { ok: false, errors }
  const lines = [
    '# pxebox: generated for this machine; see GET /v1/machines/<mac> for what it fetched',
    grubEcho(`pxebox: ${machine.mac}: ${label}`),
    ['linux', grubFile(kernel.value, target), ...args.map(grubQuote)].join(' '),
  ]
  if (initrds.length > 0) lines.push(['initrd', ...initrds.map((p) => grubFile(p, target))].join(' '))
  lines.push('boot', '')
  return { ok: true, value: lines.join('\n') }
}

/**
 * Where installed systems keep the EFI loader the firmware would boot, tried in order: the removable-media path every
 * firmware falls back to (Fedora CoreOS and Flatcar install their shim there), then the shims of the common
 * distributions, then Windows' boot manager.
 */
export const LOCAL_EFI_LOADERS: readonly string[] = [
  '/EFI/BOOT/BOOTX64.EFI',
  '/EFI/debian/shimx64.efi',
  '/EFI/ubuntu/shimx64.efi',
  '/EFI/fedora/shimx64.efi',
  '/EFI/redhat/shimx64.efi',
  '/EFI/centos/shimx64.efi',
  '/EFI/rocky/shimx64.efi',
  '/EFI/opensuse/shim.efi',
  '/EFI/Microsoft/Boot/bootmgfw.efi',
]

/**
 * Install once, GRUB side (the iPXE side is src/boot/local-boot.ts): find the installed system's EFI loader on
 * the local disks and chainload it. Not `exit`: Debian's GRUB 2.06 exits
 * with EFI_SUCCESS whatever status it is given (the "exit takes a return code" patch is Fedora's), and a boot option
 * that returns EFI_SUCCESS makes EDK2's boot manager stop and open its menu instead of trying the next option (UEFI
 * spec section 3.1.1; measured: OVMF opened "UiApp", the setup screen, after `exit` and after `exit 1`). Under Secure
 * Boot the chainloaded binary is verified through shim, so it must be signed (an installed shim is). If no loader is
 * found, `exit` remains.
 */
export function renderGrubLocalBootConfig(mac: string, profile: string, installedAt: string): string {
  const lines = [
    grubEcho(`pxebox: ${mac} reported installed at ${installedAt}; profile "${profile}" has boot_once: true.`),
    grubEcho(`pxebox: booting from local disk. To install again: POST /v1/machines/${mac}/rearm`),
  ]
  for (const loader of LOCAL_EFI_LOADERS) {
    // search sets root to the first filesystem holding the file; a miss leaves root alone and the next one is tried.
    lines.push(`if search --no-floppy --file --set=root ${grubQuote(loader)}; then chainloader ${grubQuote(loader)}; boot; fi`)
  }
  lines.push(grubEcho('pxebox: no EFI loader found on the local disks; returning to firmware'), 'sleep 10', 'exit', '')
  return lines.join('\n')
}

/**
 * For a machine pxebox has no boot for (no group matches and no default group, or a profile without kernel): say so
 * on the console, wait long enough to be read, and exit to the firmware (EDK2 then opens its menu: see
 * renderGrubLocalBootConfig).
 */
export function renderGrubMessageConfig(lines: readonly string[], pauseSeconds = 10): string {
  return [...lines.map((l) => grubEcho(`pxebox: ${l}`)), `sleep ${Math.max(0, Math.trunc(pauseSeconds))}`, 'exit', ''].join('\n')
}

/**
 * The answer to `/grub/grub.cfg` (the only name Debian's GRUB asks for): load `$prefix/grub.cfg-01-<mac-dashes>` for
 * the booting NIC. GRUB 2.06 has no `${mac:hexhyp}`, so regexp splits `$net_default_mac` (`52:54:00:12:34:56`, the
 * NIC GRUB booted from) into six captures. If that fails (no MAC, or the file is missing) the machine says so and
 * returns to the firmware.
 */
export function grubBootstrapConfig(): string {
  const captures = [1, 2, 3, 4, 5, 6].map((i) => `--set=${i}:pxebox_m${i}`).join(' ')
  const dashed = [1, 2, 3, 4, 5, 6].map((i) => `\${pxebox_m${i}}`).join('-')
  const octet = '([0-9a-fA-F][0-9a-fA-F])'
  return [
    '# pxebox: each machine\'s own config is grub.cfg-01-<mac-dashes> (pxelinux naming, also searched by newer GRUBs)',
    `regexp ${captures} '^${Array(6).fill(octet).join(':')}$' "$net_default_mac"`,
    `configfile "$prefix/grub.cfg-01-${dashed}"`,
    grubEcho('pxebox: no config for this machine (MAC not readable, or its config could not be loaded); returning to firmware'),
    'sleep 10',
    'exit',
    '',
  ].join('\n')
}
