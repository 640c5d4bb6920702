/**
 * The GRUB config file names a machine may ask pxebox for over TFTP, and which machine each one identifies.
 *
 * - `grub.cfg`: the default config. Debian's signed GRUB 2.06 reads only `$prefix/grub.cfg` (`/grub/grub.cfg`,
 *   measured); pxebox answers it with a bootstrap that loads the per-MAC name below (grub-config.ts).
 * - `grub.cfg-01-<mac-dashes>`: pxelinux naming (`01` = ARP hardware type Ethernet), lowercase hex; what pxebox's
 *   bootstrap asks for and what GRUB's own network search tries (upstream grub-core/net/net.c
 *   grub_net_search_config_file, in GRUB 2.12 and in distribution builds such as Fedora's and Ubuntu's).
 * - `grub.cfg-<mac>` with dashes or colons: the same without the type byte (MAAS loads `grub.cfg-${net_default_mac}`).
 * - `grub.cfg-<UUID>`: the DHCP client UUID (option 97), tried first by GRUB versions that record it.
 * - `grub.cfg-<IPv4 as 8 hex digits>` and its truncations down to 1 digit: GRUB (like pxelinux) tries the full
 *   address, then ever shorter prefixes, uppercase hex: `C0A80A05`, `C0A80A0`, ..., `C`.
 * Each with or without a `grub/` directory in front (the prefix Debian's build uses), and with leading slashes.
 */
import { ipToInt } from '../host/ipv4.js'
import { normalizeUuid } from '../catalog/labels.js'

/** What a config file name says about the machine asking. */
export type GrubConfigIdentity =
  | { readonly kind: 'default' }
  | { readonly kind: 'mac'; readonly mac: string }
  | { readonly kind: 'uuid'; readonly uuid: string }
  /** `hex`: uppercase, 1-8 digits; `bits`: how many leading bits of the address it fixes (4 per digit). */
  | { readonly kind: 'ip'; readonly hex: string; readonly bits: number }

const MAC_DASHES = /^(?:01-)?([0-9a-f]{2})-([0-9a-f]{2})-([0-9a-f]{2})-([0-9a-f]{2})-([0-9a-f]{2})-([0-9a-f]{2})$/i
const MAC_COLONS = /^([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2})$/i
const IP_HEX = /^[0-9A-F]{1,8}$/

/**
 * Which machine a requested file name identifies, or undefined when it is not a GRUB config name pxebox answers.
 * Hex case is accepted both ways; the result is canonical (lowercase colon MAC, lowercase UUID, uppercase IP hex).
 */
export function grubConfigIdentity(filename: string): GrubConfigIdentity | undefined {
  let name = filename.replace(/^\/+/, '')
  if (name.startsWith('grub/')) name = name.slice('grub/'.length)
  if (name === 'grub.cfg') return { kind: 'default' }
  if (!name.startsWith('grub.cfg-')) return undefined
  const suffix = name.slice('grub.cfg-'.length)
  const mac = MAC_DASHES.exec(suffix) ?? MAC_COLONS.exec(suffix)
  // A NIC's MAC is unicast (I/G bit of the first octet clear): `grub.cfg-01-52-54-00-12-34` is a truncated pxelinux
  // name, not the multicast address 01:52:54:00:12:34.
  if (mac && (parseInt(mac[1]!, 16) & 1) === 0) return { kind: 'mac', mac: mac.slice(1, 7).join(':').toLowerCase() }
  if (mac) return undefined
  // A UUID is 8-4-4-4-12 hex: never confused with a MAC (6 groups of 2) or an IP prefix (no dashes).
  const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(suffix) ? normalizeUuid(suffix) : undefined
  if (uuid !== undefined) return { kind: 'uuid', uuid }
  // Uppercase only, as GRUB and pxelinux write it: lowercase hex of 1-8 digits is more likely something else
  // (a typo'd MAC), and pxebox would rather say "not found" than guess.
  if (IP_HEX.test(suffix)) return { kind: 'ip', hex: suffix, bits: suffix.length * 4 }
  return undefined
}

/** True when IPv4 `address` starts with the bits an `ip` identity fixes (`C0A8` matches 192.168.x.x). */
export function ipMatchesGrubHex(address: string, identity: { hex: string }): boolean {
  const n = ipToInt(address)
  if (n === undefined) return false
  const hex = n.toString(16).padStart(8, '0').toUpperCase()
  return hex.startsWith(identity.hex)
}

/**
 * Every name GRUB's network search tries for a machine, in its order (UUID, `01-<mac>`, IP and its truncations,
 * plain `grub.cfg`), under `dir` (`grub` for Debian's prefix). For tests and for documentation of what pxebox answers.
 */
export function grubConfigSearchNames(machine: { mac: string; uuid?: string; ip?: string }, dir = 'grub'): string[] {
  const names: string[] = []
  if (machine.uuid !== undefined) names.push(`grub.cfg-${machine.uuid.toLowerCase()}`)
  names.push(`grub.cfg-01-${machine.mac.toLowerCase().replace(/:/g, '-')}`)
  if (machine.ip !== undefined) {
    const hex = machine.ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0')).join('').toUpperCase()
    for (let n = hex.length; n >= 1; n--) names.push(`grub.cfg-${hex.slice(0, n)}`)
  }
  names.push('grub.cfg')
  return names.map((n) => (dir === '' ? n : `${dir}/${n}`))
}
