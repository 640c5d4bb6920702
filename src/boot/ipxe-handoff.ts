/**
 * "Firmware did not run iPXE" (issue 19): a UEFI machine that fetched pxebox's iPXE binary over TFTP in full and never
 * came back as iPXE. Firmware with Secure Boot on downloads the unsigned binary, refuses to start it (OVMF: "Access
 * Denied", measured in test/e2e/secureboot-draft.test.ts) and goes on to its next boot option; nothing on the wire
 * says so. pxebox sees the whole transfer and then silence, and says what that silence most likely means: a timeline
 * entry on the machine and a finding, both naming the fix (`loader: shim-grub`).
 *
 * "Came back as iPXE": iPXE's own DHCP request (client class ipxe) or an iPXE boot script fetched over HTTP. A machine
 * clears its finding by doing either, or by fetching another first stage (shim after the operator switched its group).
 * Pure apart from the clock: the service feeds it attributed events and calls `evaluate` on a timer.
 */
import type { BootEvent } from '../machines/events.js'
import type { Finding } from '../addresses/model.js'
import type { Diagnosis } from '../machines/store.js'

/** UEFI iPXE binaries pxebox hands out (boot-files.ts); BIOS loaders are not subject to Secure Boot. */
const UEFI_IPXE = /(^|\/)(ipxe\.efi|snponly\.efi|snp\.efi)$/i

/** HTTP steps only a running iPXE produces (its boot script, pxebox's `/ipxe`, the local-boot script). */
const IPXE_HTTP_STEPS: ReadonlySet<string> = new Set(['script', 'ipxe', 'local-boot'])

/** The finding's and the timeline entry's headline (issue 19 wording). */
export const IPXE_NOT_RUN = 'firmware did not run iPXE: Secure Boot on? use loader: shim-grub'

/** Options of createIpxeHandoffWatch. */
export interface IpxeHandoffOptions {
  /** How long after the transfer iPXE has to show up (config `machines.ipxe_not_run_after`, ms here). */
  readonly timeoutMs: number
  /**
   * Put the conclusion on the machine's timeline (MachineStore.recordDiagnosis): step `ipxe-not-run`, a failed `tftp`
   * stage, so the machine shows as failed with the reason. Must not throw.
   */
  readonly report: (mac: string, diagnosis: Diagnosis) => void
  /** Clock (ms); tests pass a fake one. */
  readonly now?: () => number
  /** Machines watched or reported at once; the oldest go first (a flood of MACs cannot grow it). Default 10,000. */
  readonly maxMachines?: number
  /** A finding nobody cleared is dropped after this long (the timeline entry stays). Default 24 h. */
  readonly findingTtlMs?: number
}

/** The watch: fed every attributed boot event, evaluated on a timer. */
export interface IpxeHandoffWatch {
  /** One boot event and the MAC the machine store attributed it to. */
  observe(mac: string, event: BootEvent): void
  /** Report machines whose time is up and drop expired findings; returns the current findings. */
  evaluate(): Finding[]
  /** Current findings (as of the last evaluate). */
  findings(): Finding[]
}

interface Handoff {
  at: number
  time: string
  file: string
  bytes?: number
  ip?: string
}

/** Keep a Map at most `max` entries, oldest inserted first out. */
function trim<K, V>(map: Map<K, V>, max: number): void {
  for (const key of map.keys()) {
    if (map.size <= max) return
    map.delete(key)
  }
}

/** Whether this event shows iPXE running on the machine. */
function isIpxe(event: BootEvent): boolean {
  if (event.kind === 'dhcp') return event.detail.client_class === 'ipxe'
  return event.kind === 'http' && IPXE_HTTP_STEPS.has(event.step)
}

/** A new watch. */
export function createIpxeHandoffWatch(opts: IpxeHandoffOptions): IpxeHandoffWatch {
  const now = opts.now ?? Date.now
  const max = opts.maxMachines ?? 10_000
  const ttl = opts.findingTtlMs ?? 24 * 3600_000
  const pending = new Map<string, Handoff>()
  const found = new Map<string, { at: number; finding: Finding }>()

  const observe = (mac: string, event: BootEvent): void => {
    if (isIpxe(event)) {
      pending.delete(mac)
      found.delete(mac)
      return
    }
    if (event.kind !== 'tftp' || event.outcome !== 'ok' || event.detail.tsize_probe === true) return
    const file = typeof event.detail.file === 'string' ? event.detail.file : ''
    if (!UEFI_IPXE.test(file)) {
      // Another first stage or a later file (shim, GRUB, a kernel): whatever it runs, it is not stuck on iPXE.
      pending.delete(mac)
      found.delete(mac)
      return
    }
    pending.delete(mac)
    pending.set(mac, {
      at: now(),
      time: event.time,
      file,
      ...(typeof event.detail.bytes === 'number' ? { bytes: event.detail.bytes } : {}),
      ...(event.ip !== undefined ? { ip: event.ip } : {}),
    })
    trim(pending, max)
  }

  const evaluate = (): Finding[] => {
    const t = now()
    for (const [mac, h] of pending) {
      if (t - h.at < opts.timeoutMs) continue
      pending.delete(mac)
      const seconds = Math.round(opts.timeoutMs / 1000)
      const what = `${h.file}${h.bytes !== undefined ? ` (${h.bytes} bytes)` : ''} fetched at ${h.time}; no iPXE DHCP request or boot script within ${seconds} s`
      const finding: Finding = {
        id: `ipxe-not-run:${mac}`,
        kind: 'ipxe-not-run',
        macs: [mac],
        ...(h.ip !== undefined ? { ip: h.ip } : {}),
        since: new Date(t).toISOString(),
        explanation:
          `${IPXE_NOT_RUN}. ${mac} fetched ${h.file} over TFTP and did not come back as iPXE within ${seconds} s. ` +
          'UEFI firmware with Secure Boot on refuses pxebox\'s unsigned iPXE ("Access Denied") and moves on to its next boot option. ' +
          "Set loader: shim-grub on the machine's group (Microsoft-signed shim and Debian-signed GRUB), or switch Secure Boot off.",
        evidence: [{ time: h.time, source: 'tftp', mac, ...(h.ip !== undefined ? { ip: h.ip } : {}), what: `${h.file} sent in full` }],
      }
      found.delete(mac)
      found.set(mac, { at: t, finding })
      trim(found, max)
      opts.report(mac, { time: new Date(t).toISOString(), step: 'ipxe-not-run', stage: 'tftp', outcome: IPXE_NOT_RUN, what, ...(h.ip !== undefined ? { ip: h.ip } : {}) })
    }
    for (const [mac, f] of found) if (t - f.at > ttl) found.delete(mac)
    return [...found.values()].map((f) => f.finding)
  }

  return {
    observe,
    evaluate,
    findings: () => [...found.values()].map((f) => f.finding),
  }
}

/** The watch with its timer: evaluated every `everyMs` (default a quarter of the timeout, 1 to 5 s). */
export function startIpxeHandoffWatch(opts: IpxeHandoffOptions & { readonly everyMs?: number }): IpxeHandoffWatch & { close(): void } {
  const watch = createIpxeHandoffWatch(opts)
  const timer = setInterval(() => watch.evaluate(), opts.everyMs ?? Math.min(5000, Math.max(1000, opts.timeoutMs / 4)))
  timer.unref()
  return { ...watch, close: () => clearInterval(timer) }
}
