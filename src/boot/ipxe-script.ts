/**
 * iPXE scripts: the bootstrap script (`/boot.ipxe`) that gathers a machine's identity and chains to `/ipxe`, and the
 * per-profile boot script (kernel, initrds, args, boot) in Matchbox's layout, rendered from the profile's boot plan
 * (src/catalog/boot-plan.ts, which explains the initrd naming rules).
 *
 * Root-relative kernel/initrd URLs (`/assets/...`) are made absolute with the public URL, so the script works however
 * it was reached (chained, typed at the iPXE prompt, fetched by curl for debugging).
 */
import type { BootPlan } from '../catalog/boot-plan.js'

/**
 * The identity variables `/boot.ipxe` forwards. `${mac:hexhyp}` avoids colons in the query. The serial travels as
 * `${serial:hexraw}` (catalog/labels.ts turns `serial_hex` back into the `serial` label): Debian's iPXE 2019 builds
 * break `:uristring` on bytes >= 0x80 and `chain` decodes %26/%3D/%2B back, so a serial with `&`, `=`, `+` or
 * non-ASCII bytes split or truncated the query (measured, test/e2e/discovery-draft.test.ts). Hostname and domain are
 * DNS names and stay URI-escaped. `${buildarch}` is the iPXE build's arch (undionly.kpxe says i386 on x86_64).
 */
export const IDENTITY_QUERY =
  'mac=${mac:hexhyp}&uuid=${uuid}&serial_hex=${serial:hexraw}&hostname=${hostname:uristring}' +
  '&domain=${domain:uristring}&arch=${buildarch}&platform=${platform}'

/** Base URL without trailing slashes. */
function base(publicUrl: string): string {
  return publicUrl.replace(/\/+$/, '')
}

/**
 * `set syslog <address>` when pxebox receives syslog: iPXE builds with a syslog console then log there (Debian's
 * 2019 builds accept the setting and send nothing, measured in test/e2e/discovery-draft.test.ts), and profile
 * args can name the address as `${syslog}` (e.g. `inst.syslog=${syslog}`, `log_host=${syslog}`): iPXE expands it.
 */
function syslogLine(syslogAddress: string | undefined): string {
  if (syslogAddress === undefined) return ''
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(syslogAddress)) throw new Error(`syslog address ${JSON.stringify(syslogAddress)} is not an IPv4 address`)
  return `set syslog ${syslogAddress}\n`
}

/** `/boot.ipxe`: chain to this server's `/ipxe` with the machine's identity (Matchbox's bootstrap, plus arch/platform). */
export function bootstrapScript(publicUrl: string, syslogAddress?: string): string {
  return `#!ipxe\n${syslogLine(syslogAddress)}chain ${base(publicUrl)}/ipxe?${IDENTITY_QUERY}\n`
}

/** A root-relative URL (`/x`, not `//host/x`) made absolute; anything else (http://, ${var}/x, tftp://) unchanged. */
export function absoluteUrl(url: string, publicUrl: string): string {
  return url.startsWith('/') && !url.startsWith('//') ? base(publicUrl) + url : url
}

/**
 * The `/ipxe` script for a profile:
 * ```
 * #!ipxe
 * kernel <kernel> <args...>
 * initrd --name <name> <url>     (one line per initrd)
 * boot
 * ```
 * `--name` is always written so the name the kernel args use is the name iPXE gives the image. With syslog on, a
 * `set syslog <address>` line comes first (see syslogLine).
 */
export function renderIpxeScript(plan: BootPlan, publicUrl: string, syslogAddress?: string): string {
  let script = `#!ipxe\n${syslogLine(syslogAddress)}kernel ${absoluteUrl(plan.kernel, publicUrl)}`
  for (const arg of plan.args) script += ` ${arg}`
  script += '\n'
  for (const initrd of plan.initrds) {
    const words = [...initrd.options, '--name', initrd.name, absoluteUrl(initrd.url, publicUrl), ...initrd.rest]
    script += `initrd ${words.join(' ')}\n`
  }
  return script + 'boot\n'
}
