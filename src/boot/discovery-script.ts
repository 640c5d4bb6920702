/**
 * The iPXE holding script for a machine no group matches (issue 20): instead of a 404 that sends the firmware to its
 * next boot device, the machine prints who it is and what the operator should do, reports its inventory, then waits
 * and asks `/ipxe` again with the same labels, so that once it is assigned it boots its profile without a power cycle.
 *
 * Facts measured with Debian's iPXE (1.0.0+git-20190125: snponly.efi, ipxe.efi, QEMU's ROMs) under QEMU with
 * `-smbios` (test/e2e/discovery-draft.test.ts):
 * - `${x:uristring}` is no escape for a query value in this build: bytes >= 0x80 come out sign-extended
 *   (`%FFFFFFC3`) and truncate the rest of the URL, and `chain` re-parses the URL and turns %26, %3D and %2F back
 *   into `&`, `=` and `/`, so an SMBIOS product "A & B=C" splits into two parameters; `+` is left as is (a space to
 *   form decoders). `${x:hexraw}` survives everything, so free-text facts travel as hex (inventory.ts decodes them).
 * - `${uuid:uristring}` formats the raw 16 bytes, not the UUID text; `${uuid}` is plain hex with hyphens.
 * - `set syslog` succeeds but sends nothing: Debian's builds have no syslog console (no UDP 514 datagram from any
 *   of them). It is set anyway for iPXE builds that have one.
 * - snponly.efi sees only the NIC it was loaded from (net1 empty); ipxe.efi sees every NIC. `${net0/chip}` is "SNP"
 *   under UEFI, the driver name ("virtio-net") from the BIOS ROM; `${memsize}` is empty in all of them.
 * - `chain --replace --autofree` back to the same server ran 30 rounds in a row, and the holding script itself 3
 *   rounds (report, sleep, poll) on each build; --replace makes the next script take this one's place, not nest.
 */
import { normalizeUuid, type Labels } from '../catalog/labels.js'

/** What the holding script needs; every value is checked, since it ends up inside an iPXE script. */
export interface HoldingScriptInput {
  /** pxebox's base URL as machines reach it, e.g. `http://10.213.47.1:8080` (no trailing slash needed). */
  publicUrl: string
  /** Where the operator assigns this machine (printed as is), e.g. `http://10.213.47.1:8080/ui/#machine=...`. */
  dashboardUrl: string
  /** Seconds between polls of `/ipxe`, 1-3600. */
  pollSeconds: number
  /** IPv4 address iPXE should send syslog to, when pxebox receives syslog. */
  syslogAddress?: string
  /** The labels the machine presented to `/ipxe`; the poll presents them again. `mac` and `uuid` are printed. */
  labels: Labels
  /** Path of the inventory report endpoint (default `/discovery/report`). */
  reportPath?: string
}

/** How many NICs the report asks about: iPXE numbers them net0..netN; absent ones expand to nothing. */
export const reportedNics = 8

/**
 * The inventory query iPXE expands, in inventory.ts's vocabulary: free text as `:hexraw` (see the header), fixed-form
 * values plain.
 */
export const INVENTORY_QUERY = [
  'mac=${mac:hexhyp}',
  'uuid=${uuid}',
  'manufacturer=${manufacturer:hexraw}',
  'product=${product:hexraw}',
  'serial=${serial:hexraw}',
  'asset=${asset:hexraw}',
  'platform=${platform}',
  'buildarch=${buildarch}',
  'memsize=${memsize}',
  ...Array.from({ length: reportedNics }, (_, i) => `net${i}=\${net${i}/mac:hexhyp}&chip${i}=\${net${i}/chip:hexraw}`),
].join('&')

/**
 * Characters a label value may carry through iPXE's `chain` unchanged: iPXE re-parses the URL and decodes %26, %3D,
 * %2B and %2F, so values needing those (or anything outside printable ASCII) cannot be sent back as they came.
 */
const roundTrippable = /^[A-Za-z0-9 ._~:!*'()@,;-]*$/

/** The query string a poll presents again, and the labels left out because iPXE would alter them. */
export function chainBackQuery(labels: Labels): { query: string; dropped: string[] } {
  const parts: string[] = []
  const dropped: string[] = []
  for (const [key, value] of Object.entries(labels)) {
    if (!/^[a-z0-9_.-]{1,64}$/.test(key) || !roundTrippable.test(value)) {
      dropped.push(key)
      continue
    }
    // Spaces as %20 (iPXE keeps %20 escaped); everything else in the set above is literal and free of `${`. iPXE
    // escapes ':' as %3A, so the MAC goes in the hyphen form the bootstrap's ${mac:hexhyp} uses (labels.ts reads both).
    const text = key === 'mac' ? value.replace(/:/g, '-') : value
    parts.push(`${key}=${text.replace(/ /g, '%20')}`)
  }
  return { query: parts.join('&'), dropped }
}

const ipv4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/
/** Printable ASCII without `$` (iPXE expands `${...}` in every command line) and without spaces. */
const scriptSafe = /^[\x21-\x23\x25-\x7e]+$/

/** Thrown for inputs that would make a broken or injectable script: a programming or config error, not a client's. */
export class HoldingScriptError extends Error {
  readonly code = 'ERR_HOLDING_SCRIPT'
  override name = 'HoldingScriptError'
}

/** The holding script text. Throws HoldingScriptError for an input that cannot be put into a script safely. */
export function holdingScript(input: HoldingScriptInput): string {
  const base = input.publicUrl.replace(/\/+$/, '')
  if (!/^https?:\/\//.test(base) || !scriptSafe.test(base)) throw new HoldingScriptError(`publicUrl ${JSON.stringify(base)} is not a plain http(s) URL`)
  if (!scriptSafe.test(input.dashboardUrl)) throw new HoldingScriptError(`dashboardUrl ${JSON.stringify(input.dashboardUrl)} has spaces, $ or control characters`)
  if (!Number.isInteger(input.pollSeconds) || input.pollSeconds < 1 || input.pollSeconds > 3600) {
    throw new HoldingScriptError(`pollSeconds must be an integer 1-3600, got ${input.pollSeconds}`)
  }
  if (input.syslogAddress !== undefined && !ipv4.test(input.syslogAddress)) {
    throw new HoldingScriptError(`syslogAddress ${JSON.stringify(input.syslogAddress)} is not an IPv4 address (iPXE's syslog setting is IPv4 only)`)
  }
  const reportPath = input.reportPath ?? '/discovery/report'
  if (!reportPath.startsWith('/') || !scriptSafe.test(reportPath) || reportPath.includes('?')) {
    throw new HoldingScriptError(`reportPath ${JSON.stringify(reportPath)} must be a plain absolute path`)
  }
  // mac and uuid come normalized from labels.ts (hex, colons, hyphens); anything else is shown as iPXE knows it.
  const mac = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(input.labels.mac ?? '') ? (input.labels.mac as string) : '${mac}'
  const uuid = input.labels.uuid !== undefined && normalizeUuid(input.labels.uuid) === input.labels.uuid ? input.labels.uuid : '${uuid}'
  const { query } = chainBackQuery(input.labels)
  const poll = `${base}/ipxe${query === '' ? '' : `?${query}`}`
  return [
    '#!ipxe',
    ...(input.syslogAddress === undefined ? [] : [`set syslog ${input.syslogAddress}`]),
    'echo',
    'echo pxebox: this machine matches no group yet, so it waits here.',
    `echo MAC: ${mac}`,
    `echo UUID: ${uuid}`,
    'echo Serial: ${serial}',
    'echo Model: ${manufacturer} ${product}',
    'echo To boot it, assign it to a group in the pxebox dashboard:',
    `echo ${input.dashboardUrl}`,
    `echo (or add a group selecting mac ${mac} to config.yaml). It will then boot by itself.`,
    // The report's body is discarded: imgfetch stores it as an image, imgfree drops it so polls do not pile up.
    `imgfetch --name pxebox-report ${base}${reportPath}?${INVENTORY_QUERY} && imgfree pxebox-report || echo pxebox: could not send the inventory`,
    ':poll',
    `echo pxebox: asking again in ${input.pollSeconds} s`,
    `sleep ${input.pollSeconds}`,
    // --replace: the next script takes this one's place instead of nesting, so hours of polling use no more memory.
    // On failure (pxebox restarting) wait and ask again rather than fall through to the next boot device.
    `chain --replace --autofree ${poll} || goto poll`,
    '',
  ].join('\n')
}
