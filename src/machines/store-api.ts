/**
 * The machine store's interface (store.ts implements it): what the services, the API and the daemon call, and its
 * options. Kept apart so the implementation file holds the behaviour only.
 */
import type { Logger } from '../host/log.js'
import type { Store } from '../store/index.js'
import type { BootEvent, EventSink } from './events.js'
import type { LogLine, MachineRecord, TimelineEntry } from './model.js'

/** Options for openMachineStore. */
export interface MachineStoreOptions {
  /** Where records are kept (the daemon's Store; the caller closes it). */
  readonly store: Store
  /** Where an earlier pxebox kept machines.json (`<data_dir>/machines`): imported once, then kept as `.migrated`. */
  readonly legacyDir?: string
  readonly logger?: Logger
  /** Clock (ms); tests pass a fake one. */
  readonly now?: () => number
  /** The address tracker's MAC for an IP, when it runs: attributes MAC-less events the store cannot place itself. */
  readonly macForIp?: (ip: string) => string | undefined
  /** Quiet time before batched event writes go to disk. Default 1000 ms. */
  readonly flushDelayMs?: number
  /** Records kept, at load as well as at run time; the least recently seen go first. Default 10,000. */
  readonly maxMachines?: number
  /** This appliance's site (config `store.site`): each record carries the site that last saw the machine. */
  readonly site?: string
  /** This appliance's name (config `store.name`): each record carries the appliance that last saw the machine. */
  readonly appliance?: string
  /**
   * A store other appliances write to (etcd): follow their machine writes into memory (records-follow.ts). Writes are
   * guarded and merged on conflict either way (WriteGuard), so no appliance's events are lost.
   */
  readonly follow?: boolean
}

/** Machine records, fed by boot events and changed by operator actions. */
export interface MachineStore extends EventSink {
  /** A record. Until `timelines` resolves its timeline, history and log may not be read yet (empty). */
  get(mac: string): MachineRecord | undefined
  /** Every record, most recently seen first (timelines as for `get`). */
  list(): MachineRecord[]
  /**
   * Resolves once every record's timeline is in memory (read in slices after open). Readers that show timelines
   * (the API) wait for it; the boot path needs only the rest of the record, which open reads.
   */
  readonly timelines: Promise<void>
  /** Records whose timeline is not read yet (0 once `timelines` resolved). */
  timelinesPending(): number
  /** The installed callback: stamp `installed_at` and add an `installed` stage. Creates the record if unknown. */
  markInstalled(mac: string, ip?: string): Promise<MachineRecord>
  /** Clear `installed_at`, so a boot_once profile installs again. Undefined when the MAC is unknown. */
  rearm(mac: string): Promise<MachineRecord | undefined>
  /**
   * Merge operator labels (a null value removes the label). Undefined when the MAC is unknown; throws
   * MachineLabelError (changing nothing) when the result would break RECORD_LIMITS.
   */
  setLabels(mac: string, labels: Readonly<Record<string, string | null>>): Promise<MachineRecord | undefined>
  /**
   * A syslog line from `ip`, attributed like a MAC-less TFTP event (the MAC last seen on that address, else the
   * address tracker's binding) and appended to that machine's log, the oldest line dropped beyond MAX_LOG_LINES.
   * Returns the MAC, or undefined when no machine is known on that address (the line is not kept).
   */
  appendLog(ip: string, line: Omit<LogLine, 'time'>): string | undefined
  /** Drop a record. */
  forget(mac: string): Promise<boolean>
  /**
   * A conclusion pxebox reached itself about a machine, from what it did not see (no packet carries it): a timeline
   * entry with source `pxebox` (e.g. "firmware did not run iPXE", src/boot/ipxe-handoff.ts). Unknown MACs are ignored.
   */
  recordDiagnosis(mac: string, diagnosis: Diagnosis): void
  /**
   * Called with the MAC after every change (events and operator actions), and with the boot event when one caused it
   * (after attribution: a TFTP event that named no MAC arrives with the MAC the store gave it). Returns the
   * unsubscribe function.
   */
  subscribe(listener: (mac: string, event?: BootEvent) => void): () => void
  /** Problems found loading (invalid records skipped, a corrupt legacy machines.json moved aside). */
  readonly problems: readonly string[]
  /** Write pending changes now. */
  flush(): Promise<void>
  /** Write pending changes and stop the timer. */
  close(): Promise<void>
}

/** A timeline entry pxebox concluded (see MachineStore.recordDiagnosis). */
export interface Diagnosis {
  readonly time: string
  readonly step: string
  readonly stage?: TimelineEntry['stage']
  /** 'ok' or what is wrong, in words. */
  readonly outcome: string
  readonly what: string
  readonly ip?: string
}

/** Thrown by setLabels when the change would break RECORD_LIMITS; nothing is changed. */
export class MachineLabelError extends Error {
  readonly code = 'PXEBOX_MACHINE_LABELS'
  override readonly name = 'MachineLabelError'
}
