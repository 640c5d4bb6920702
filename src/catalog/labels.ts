/**
 * Machine labels: the key=value pairs a machine presents (query string of `/ipxe`, or what the DHCP side saw),
 * normalized so that one machine always presents the same values however its firmware spelt them.
 *
 * Normalization rules (documented for operators in examples/matchbox/README.md):
 * - label names are lowercased (`MAC=` and `mac=` are one label);
 * - `mac`: colon, hyphen (iPXE `${mac:hexhyp}`), Cisco dot (`5254.0012.3456`) or bare hex, any case ->
 *   lowercase colon form `52:54:00:12:34:56`. An unparsable MAC label is dropped (as Matchbox does);
 * - `uuid`: any case, with or without hyphens or braces -> lowercase 8-4-4-4-12. iPXE's `${uuid}` and DHCP
 *   option 97 differ in byte order on SMBIOS >= 2.6 firmware (SMBIOS 2.6 made the first three fields little-endian;
 *   iPXE prints them as stored, option 97 carries them in wire order). Selectors therefore match a uuid in either
 *   order: see `uuidForms`;
 * - other labels are compared exactly, after dropping empty values (an unset iPXE variable expands to nothing);
 * - `serial_hex` (what `/boot.ipxe` sends, `${serial:hexraw}`) becomes the `serial` label: Debian's iPXE (2019)
 *   mangles `${serial:uristring}` (bytes >= 0x80 sign-extended, and `chain` decodes %26/%3D back into `&`/`=`),
 *   so a serial "A&B=C" used to split into two labels; hex survives. Control characters become spaces, trimmed.
 */
import { textFromHex } from '../host/hex-text.js'

/** Normalized labels: lowercase names, canonical mac/uuid values. */
export type Labels = Readonly<Record<string, string>>

const HEX12 = /^[0-9a-f]{12}$/

/** 0-15 for a hex digit's char code (either case), else -1. */
function hexValue(code: number): number {
  if (code >= 48 && code <= 57) return code - 48
  if (code >= 97 && code <= 102) return code - 87
  if (code >= 65 && code <= 70) return code - 55
  return -1
}

/**
 * The form iPXE sends (`${mac:hexhyp}`) and the canonical one, checked character by character: every `/ipxe` request
 * carries a MAC, and the regular-expression route below cost ~1.6 µs of the ~80 µs a request takes.
 */
function fastMac(s: string): string | undefined {
  if (s.length !== 17) return undefined
  const sep = s.charCodeAt(2)
  if (sep !== 58 && sep !== 45) return undefined // ':' or '-'
  for (let i = 0; i < 17; i++) {
    if (i % 3 === 2) {
      if (s.charCodeAt(i) !== sep) return undefined
    } else if (hexValue(s.charCodeAt(i)) < 0) return undefined
  }
  const lower = s.toLowerCase()
  return sep === 58 ? lower : lower.replaceAll('-', ':')
}

/** Parse a 6-byte MAC in colon, hyphen, dot or bare-hex form (any case); returns lowercase colon form or undefined. */
export function normalizeMac(text: string): string | undefined {
  const fast = fastMac(text)
  if (fast !== undefined) return fast
  const s = text.trim().toLowerCase()
  let hex: string
  if (/^[0-9a-f]{2}([:-])[0-9a-f]{2}(\1[0-9a-f]{2}){4}$/.test(s)) hex = s.replace(/[:-]/g, '')
  else if (/^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}$/.test(s)) hex = s.replace(/\./g, '')
  else if (HEX12.test(s)) hex = s
  else return undefined
  return hex.match(/../g)!.join(':')
}

/** Parse a UUID (any case, optional hyphens/braces); returns lowercase 8-4-4-4-12 or undefined. */
export function normalizeUuid(text: string): string | undefined {
  let s = text.trim().toLowerCase()
  if (s.startsWith('{') && s.endsWith('}')) s = s.slice(1, -1)
  const hex = s.replace(/-/g, '')
  if (!/^[0-9a-f]{32}$/.test(hex)) return undefined
  if (s.includes('-') && !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(s)) return undefined
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

/**
 * The same UUID with its first three fields byte-swapped (SMBIOS >= 2.6 little-endian fields vs wire order).
 * Input must be normalized. Swapping twice gives the input back.
 */
export function swapUuidByteOrder(uuid: string): string {
  const rev = (h: string) => h.match(/../g)!.reverse().join('')
  const [a = '', b = '', c = '', ...rest] = uuid.split('-')
  return [rev(a), rev(b), rev(c), ...rest].join('-')
}

/** Both byte orders of a normalized UUID (one entry when the swap is a no-op, e.g. all zeros). */
export function uuidForms(uuid: string): string[] {
  const swapped = swapUuidByteOrder(uuid)
  return swapped === uuid ? [uuid] : [uuid, swapped]
}

/**
 * Bounds on what one request may present (issue 13 item 9: 10,000 requests with 4,000-character labels made
 * machines.json 125 MB). Values longer than this are dropped (named in `dropped`): no selector or template needs more;
 * a MAC is 17, a UUID 36, an SMBIOS string at most 64 bytes in practice. Labels past `MAX_LABELS` are dropped too.
 */
export const LABEL_LIMITS = { maxNameLength: 64, maxValueLength: 256, maxLabels: 32 } as const

/** Result of reading labels from a request: the labels and what was dropped, for the log. */
export interface LabelParse {
  labels: Labels
  dropped: string[]
}

/**
 * Labels from a parsed query string (values may be strings or arrays: the first value wins, as in Matchbox).
 * Never throws: bad values are dropped and named in `dropped`.
 */
export function labelsFromQuery(query: unknown): LabelParse {
  const labels: Record<string, string> = {}
  const dropped: string[] = []
  let count = 0
  if (query === null || typeof query !== 'object') return { labels, dropped }
  for (const [rawKey, rawValue] of Object.entries(query as Record<string, unknown>)) {
    const value = Array.isArray(rawValue) ? rawValue[0] : rawValue
    if (typeof value !== 'string' || value === '') continue
    let key = rawKey.toLowerCase()
    let text: string | undefined = value
    if (key === HEX_SERIAL) {
      key = 'serial'
      text = textFromHex(value, LABEL_LIMITS.maxValueLength)
    }
    if (key === '' || key in labels) continue
    if (key.length > LABEL_LIMITS.maxNameLength || count >= LABEL_LIMITS.maxLabels) {
      if (dropped.length < LABEL_LIMITS.maxLabels) dropped.push(`${key.slice(0, 64)}=${value.slice(0, 64)}`)
      continue
    }
    const normalized = text === undefined || text === '' ? undefined : normalizeLabelValue(key, text)
    if (normalized === undefined) {
      if (dropped.length < LABEL_LIMITS.maxLabels) dropped.push(`${rawKey.toLowerCase().slice(0, 64)}=${value.slice(0, 64)}`)
    } else {
      labels[key] = normalized
      count++
    }
  }
  return { labels, dropped }
}

/** The query parameter carrying the serial as iPXE's `${serial:hexraw}` (see the header). */
export const HEX_SERIAL = 'serial_hex'

/** Normalize labels a caller built itself (e.g. the DHCP side's {mac, uuid, arch}); invalid mac/uuid are dropped. */
export function normalizeLabels(input: Record<string, string | undefined>): Labels {
  const labels: Record<string, string> = {}
  for (const [rawKey, value] of Object.entries(input)) {
    if (value === undefined || value === '' || rawKey.length > LABEL_LIMITS.maxNameLength) continue
    const normalized = normalizeLabelValue(rawKey.toLowerCase(), value)
    if (normalized !== undefined) labels[rawKey.toLowerCase()] = normalized
  }
  return labels
}

/**
 * Canonical form of one label value; undefined when a mac is not a MAC or the value is longer than
 * `LABEL_LIMITS.maxValueLength`. A uuid that does not parse is kept
 * lowercased (it can only match a selector written the same way, which load-time validation forbids).
 */
export function normalizeLabelValue(key: string, value: string): string | undefined {
  if (key === 'mac') return normalizeMac(value)
  if (value.length > LABEL_LIMITS.maxValueLength) return undefined
  if (key === 'uuid') return normalizeUuid(value) ?? value.toLowerCase()
  return value
}
