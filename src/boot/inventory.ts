/**
 * The inventory a holding machine reports (discovery-script.ts's INVENTORY_QUERY): the raw query string in, bounded
 * and validated facts out. The query comes from whoever can reach pxebox's HTTP port, so everything is capped (query
 * length, parameter count, value length), free text is decoded from iPXE's `:hexraw` and stripped of control
 * characters, and fixed-form values must have their form. A bad parameter is left out and named in `problems`;
 * parsing never throws.
 *
 * The raw query string, not a parsed object: form decoding turns `+` into a space, and the first of a repeated
 * parameter must win the same way everywhere.
 */
import { normalizeMac, normalizeUuid, type Labels } from '../catalog/labels.js'

/** One network interface as iPXE numbers them (net0, net1, ...). */
export interface NicFact {
  index: number
  /** Lowercase colon form. */
  mac: string
  /** iPXE's `${netN/chip}`: the driver ("virtio-net", "e1000e"), or "SNP" under UEFI snponly.efi. */
  chip?: string
}

/** What iPXE knows of a machine; every field optional, since builds and firmware report different subsets. */
export interface MachineFacts {
  /** The MAC iPXE booted from (`${mac}`), lowercase colon form. */
  mac?: string
  /** SMBIOS system UUID as iPXE prints it, lowercase 8-4-4-4-12. */
  uuid?: string
  /** SMBIOS type 1 manufacturer ("QEMU", "Dell Inc."). */
  manufacturer?: string
  /** SMBIOS type 1 product name ("PowerEdge R650", "Standard PC (Q35 + ICH9, 2009)"). */
  product?: string
  /** SMBIOS type 1 serial number. */
  serial?: string
  /** SMBIOS type 3 asset tag. */
  asset?: string
  /** "efi" or "pcbios". */
  platform?: string
  /** The iPXE build's arch: "x86_64", "i386" (undionly.kpxe and BIOS ROMs, even on 64-bit hardware), "arm64". */
  buildarch?: string
  /** `${memsize}` in MiB, where the build reports it (Debian's 2019 builds do not). */
  memsizeMb?: number
  /** Every NIC iPXE sees, by index (snponly.efi sees only the one it booted from). */
  nics: NicFact[]
}

/** The facts and what was left out, for a debug log line. */
export interface InventoryParse {
  facts: MachineFacts
  problems: string[]
}

/** Bounds on what a report may carry. */
export const inventoryLimits = {
  /** The whole query string; INVENTORY_QUERY with 64-character SMBIOS strings and 8 NICs is about 1,500. */
  maxQueryLength: 4096,
  maxParameters: 64,
  /** Characters of a decoded text fact (SMBIOS strings are at most 64 in practice, 255 by the spec's byte count). */
  maxTextLength: 128,
  /** NIC indices accepted: net0 .. net(maxNics - 1). */
  maxNics: 8,
  /** A memsize beyond 64 TiB is not a real machine. */
  maxMemsizeMb: 64 * 1024 * 1024,
} as const

const textFacts = ['manufacturer', 'product', 'serial', 'asset'] as const

/** Parses a report's raw query string (the part after `?`). */
export function parseInventoryQuery(rawQuery: string): InventoryParse {
  const problems: string[] = []
  const facts: MachineFacts = { nics: [] }
  if (rawQuery.length > inventoryLimits.maxQueryLength) {
    problems.push(`query is ${rawQuery.length} characters, the cap is ${inventoryLimits.maxQueryLength}; only the first part was read`)
  }
  const params = new Map<string, string>()
  const pairs = rawQuery.slice(0, inventoryLimits.maxQueryLength).split('&')
  if (pairs.length > inventoryLimits.maxParameters) problems.push(`${pairs.length} parameters, only the first ${inventoryLimits.maxParameters} read`)
  for (const pair of pairs.slice(0, inventoryLimits.maxParameters)) {
    if (pair === '') continue
    const eq = pair.indexOf('=')
    const key = (eq < 0 ? pair : pair.slice(0, eq)).toLowerCase()
    const value = eq < 0 ? '' : pair.slice(eq + 1)
    if (!/^[a-z0-9_]{1,16}$/.test(key)) {
      problems.push(`parameter name ${show(key)} ignored`)
      continue
    }
    if (!params.has(key)) params.set(key, value)
  }

  const take = (key: string): string | undefined => {
    const raw = params.get(key)
    if (raw === undefined || raw === '') return undefined
    try {
      return decodeURIComponent(raw)
    } catch {
      problems.push(`${key}: bad percent-encoding ${show(raw)}`)
      return undefined
    }
  }
  const fixed = (key: string, form: RegExp): string | undefined => {
    const v = take(key)
    if (v === undefined) return undefined
    if (form.test(v)) return v
    problems.push(`${key}: ${show(v)} is not of the expected form`)
    return undefined
  }

  const mac = take('mac')
  if (mac !== undefined) {
    const m = normalizeMac(mac)
    if (m === undefined) problems.push(`mac: ${show(mac)} is not a MAC address`)
    else facts.mac = m
  }
  const uuid = take('uuid')
  if (uuid !== undefined) {
    const u = normalizeUuid(uuid)
    if (u === undefined) problems.push(`uuid: ${show(uuid)} is not a UUID`)
    else facts.uuid = u
  }
  for (const key of textFacts) {
    const hex = fixed(key, /^(?:[0-9a-fA-F]{2})+$/)
    if (hex === undefined) continue
    const text = hexText(hex)
    if (text === '') problems.push(`${key}: nothing printable in it`)
    else facts[key] = text
  }
  const platform = fixed('platform', /^[a-z0-9_-]{1,16}$/)
  if (platform !== undefined) facts.platform = platform
  const buildarch = fixed('buildarch', /^[a-z0-9_-]{1,16}$/)
  if (buildarch !== undefined) facts.buildarch = buildarch
  const memsize = fixed('memsize', /^\d{1,12}$/)
  if (memsize !== undefined) {
    const mb = Number(memsize)
    if (mb > 0 && mb <= inventoryLimits.maxMemsizeMb) facts.memsizeMb = mb
    else problems.push(`memsize: ${memsize} MiB is not a plausible memory size`)
  }
  for (let i = 0; i < inventoryLimits.maxNics; i++) {
    const raw = take(`net${i}`)
    if (raw === undefined) continue
    const nicMac = normalizeMac(raw)
    if (nicMac === undefined) {
      problems.push(`net${i}: ${show(raw)} is not a MAC address`)
      continue
    }
    const nic: NicFact = { index: i, mac: nicMac }
    const chipHex = fixed(`chip${i}`, /^(?:[0-9a-fA-F]{2})+$/)
    if (chipHex !== undefined) {
      const chip = hexText(chipHex)
      if (chip !== '') nic.chip = chip
    }
    facts.nics.push(nic)
  }
  return { facts, problems }
}

/**
 * Hex bytes -> text: UTF-8 (invalid sequences become U+FFFD), control characters as spaces, runs of spaces folded,
 * trimmed (SMBIOS strings are often padded), capped at maxTextLength characters.
 */
function hexText(hex: string): string {
  // The cap in bytes first: a 4,000-character hex string is not decoded whole to be cut afterwards.
  const bytes = Buffer.from(hex.slice(0, inventoryLimits.maxTextLength * 4 * 2), 'hex')
  const text = bytes
    .toString('utf8')
    // Controls separate words (CR LF, tabs); bidi overrides and zero-width characters only disguise text in the
    // dashboard, so they go.
    // eslint-disable-next-line no-control-regex
    .replace(/[\x00-\x1f\x7f-\x9f]/g, ' ')
    .replace(/[\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]/g, '')
    .replace(/\s+/g, ' ')
    .trim()
  return [...text].slice(0, inventoryLimits.maxTextLength).join('')
}

/** A hostile value, short and quoted, for a problem message. */
function show(s: string): string {
  return JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}...` : s)
}

/** The facts a group selector may name (README: "selector keys for discovered facts"). */
export const FACT_LABELS = ['manufacturer', 'product', 'serial', 'asset', 'platform', 'buildarch'] as const

/**
 * A machine's reported facts as selector labels: `{manufacturer: 'QEMU', product: 'Standard PC (Q35 + ICH9, 2009)'}`.
 * The `/ipxe` route adds them under what the request presents (a label in the query wins), so a group selecting
 * `product: "PowerEdge R650"` picks a discovered machine up on its next poll.
 */
export function factLabels(facts: Partial<Pick<MachineFacts, (typeof FACT_LABELS)[number]>> | undefined): Labels {
  const labels: Record<string, string> = {}
  if (facts === undefined) return labels
  for (const key of FACT_LABELS) {
    const value = facts[key]
    if (value !== undefined && value !== '') labels[key] = value
  }
  return labels
}
