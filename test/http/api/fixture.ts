/**
 * An in-process pxebox HTTP app with the operator's view wired as the daemon wires it: a real boot store over
 * config-style profiles plus the data_dir overlay, a machine store in a temp data_dir, metrics fed by the same sink.
 * `feed` records boot events the way the DHCP, TFTP and HTTP services do.
 */
import type { Test } from 'tap'
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../../src/http/app.js'
import type { DiscoverySettings } from '../../../src/http/context.js'
import { createMetrics } from '../../../src/http/metrics.js'
import { openMachineStore, type MachineStore } from '../../../src/machines/store.js'
import { createBootStoreWithOverlay, openBootOverlay, type BootOverlay } from '../../../src/catalog/overlay.js'
import type { BootStateOptions } from '../../../src/catalog/state.js'
import type { BootStore } from '../../../src/catalog/boot-store.js'
import type { BootEvent, EventSink } from '../../../src/machines/events.js'
import { silentLogger } from '../../../src/host/log.js'
import { observedAddresses } from '../../../src/addresses/observed.js'
import type { FindingView } from '../../../src/http/api/schemas.js'
import { openSqliteStore, STORE_FILE, type ApplianceView, type Store } from '../../../src/store/index.js'

export const PUBLIC = 'http://10.213.9.2:8080'
export const TOKEN = 'test-token-0123456789abcdef'

/** Base (config.yaml) sources: a boot_once installer for rack1, a live profile for everything else. */
export function baseSources(dir: string): BootStateOptions {
  return {
    profiles: {
      installer: {
        boot: { kernel: '/assets/fcos/kernel', initrd: ['/assets/fcos/initramfs.img'], args: ['coreos.inst.install_dev=/dev/vda'] },
        ignition: 'node.ign',
        boot_once: true,
      },
      live: { boot: { kernel: '/assets/fcos/kernel', initrd: ['/assets/fcos/initramfs.img'], args: [] } },
    },
    groups: [
      { id: 'rack1', profile: 'installer', selector: { mac: ['52:54:00:00:09:01', '52:54:00:00:09:02', '52:54:00:00:09:03', '52:54:00:00:09:04'] } },
      { id: 'default', profile: 'live' },
    ],
    ignitionDir: join(dir, 'ignition'),
  }
}

/** A running-in-process app and its parts. */
export interface OperatorApp {
  app: FastifyInstance
  machines: MachineStore
  store: BootStore
  /** The Store the machine records and the overlay are kept in (`<dataDir>/pxebox.db`). */
  dataStore: Store
  overlay: BootOverlay
  dir: string
  dataDir: string
  sink: EventSink
  /** Record events as the services would (DHCP and TFTP events; HTTP ones come from the routes). */
  feed(events: BootEvent[]): void
}

/** Build the app over a fresh temp dir (or `dir`, to reopen the same data_dir). */
export async function operatorApp(
  t: Test,
  opts: {
    token?: string
    openReads?: boolean
    stuckAfterMs?: number
    dir?: string
    now?: () => number
    maxEventStreams?: number
    maxEventQueuedBytes?: number
    bootFindings?: () => readonly FindingView[]
    discovery?: DiscoverySettings
    noDefaultGroup?: boolean
    /** Opens the data Store at `file` (default: the embedded one there), e.g. the outage layer over a failing store. */
    openDataStore?: (file: string) => Promise<Store>
    /** This appliance's site and name (config store.site, store.name): the records carry them (issue 17). */
    identity?: { site: string; appliance: string }
    /**
     * Wire the app as an appliance of a fleet (issue 17): the data Store is the shared one (`/v1/fleet/machines`
     * reads it), and `appliances` is the registry's list (`/v1/appliances`); `storeUp` is the outage layer's up.
     */
    fleet?: { appliances: () => readonly ApplianceView[]; storeUp?: () => boolean }
  } = {},
): Promise<OperatorApp> {
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'pxebox-api-')))
  if (!opts.dir) t.teardown(() => rm(dir, { recursive: true, force: true }))
  await mkdir(join(dir, 'ignition'), { recursive: true })
  await mkdir(join(dir, 'assets', 'fcos'), { recursive: true })
  await writeFile(join(dir, 'ignition', 'node.ign'), '{"ignition":{"version":"3.4.0"}}\n')
  await writeFile(join(dir, 'assets', 'fcos', 'kernel'), Buffer.alloc(4096, 1))
  await writeFile(join(dir, 'assets', 'fcos', 'initramfs.img'), Buffer.alloc(8192, 2))
  const dataDir = join(dir, 'data')
  const all = baseSources(dir)
  const base = opts.noDefaultGroup ? { ...all, groups: all.groups.filter((g) => g.id !== 'default') } : all
  let store: BootStore | undefined
  const dataStore = await (opts.openDataStore ?? ((file) => openSqliteStore({ file })))(join(dataDir, STORE_FILE))
  const overlay = await openBootOverlay({
    store: dataStore,
    legacyDir: join(dataDir, 'boot'),
    base: () => base,
    reload: (s) => store!.reload(s),
    // As the daemon (catalog.ts): a shared file's edit re-checks only the groups using it.
    editFile: (kind, name, text, next, commit) => store!.editFile(kind, name, text, next, commit),
    profiles: () => store!.get().profiles,
  })
  store = await createBootStoreWithOverlay(base, overlay, silentLogger)
  const machines = await openMachineStore({
    store: dataStore,
    legacyDir: join(dataDir, 'machines'),
    flushDelayMs: 50,
    ...(opts.now ? { now: opts.now } : {}),
    ...(opts.identity ?? {}),
  })
  const metrics = createMetrics()
  // As the daemon: DHCP events teach which addresses a MAC uses (the installed callback's and bind_to_lease's evidence).
  const addresses = observedAddresses()
  const sink: EventSink = {
    record(e) {
      machines.record(e)
      metrics.sink.record(e)
      addresses.record(e)
    },
  }
  const token = opts.token
  const app = buildApp({
    store,
    assetsDir: join(dir, 'assets'),
    publicUrl: PUBLIC,
    events: sink,
    addressesOf: (mac) => addresses.addressesOf(mac),
    version: '9.9.9',
    metrics,
    ...(opts.discovery ? { discovery: opts.discovery } : {}),
    api: {
      machines,
      auth: { token: () => token, openReads: opts.openReads ?? true },
      stuckAfterMs: opts.stuckAfterMs ?? 300_000,
      overlay,
      ...(opts.now ? { now: opts.now } : {}),
      ...(opts.maxEventStreams !== undefined ? { maxEventStreams: opts.maxEventStreams } : {}),
      ...(opts.maxEventQueuedBytes !== undefined ? { maxEventQueuedBytes: opts.maxEventQueuedBytes } : {}),
      ...(opts.bootFindings !== undefined ? { bootFindings: opts.bootFindings } : {}),
      ...(opts.fleet ? { sharedStore: dataStore, appliances: opts.fleet.appliances, ...(opts.fleet.storeUp ? { storeUp: opts.fleet.storeUp } : {}) } : {}),
    },
  })
  t.teardown(async () => {
    await app.close()
    await machines.close()
    store!.close()
    await dataStore.close()
  })
  return { app, machines, store, dataStore, overlay, dir, dataDir, sink, feed: (events) => events.forEach((e) => sink.record(e)) }
}

/** ISO time `secondsAgo` before now. */
export const ago = (secondsAgo: number, now = Date.now()): string => new Date(now - secondsAgo * 1000).toISOString()

/**
 * The events one machine's chainloaded UEFI boot records, as the services record them, up to `upTo` steps:
 * DHCP offer (port 67, no IP yet), 4011 ACK from its address, TFTP ipxe.efi (by IP only), iPXE's DHCP offer,
 * /boot.ipxe, /ipxe?mac=, kernel, initrd, /ignition.
 */
export function bootEvents(mac: string, ip: string, upTo: number, start: number, stepSeconds = 2): BootEvent[] {
  const hyp = mac.replace(/:/g, '-')
  const at = (i: number) => new Date(start + i * stepSeconds * 1000).toISOString()
  const dhcpDetail = { arch: 7, arch_label: 'x86_64', client_class: 'PXEClient', group: 'rack1', port: 67 }
  const all: BootEvent[] = [
    { time: at(0), kind: 'dhcp', mac, ip: '0.0.0.0', step: 'offer', outcome: 'ok', detail: { ...dhcpDetail, boot_file: 'ipxe.efi' } },
    { time: at(1), kind: 'dhcp', mac, ip, step: 'ack', outcome: 'ok', detail: { ...dhcpDetail, port: 4011, boot_file: 'ipxe.efi' } },
    { time: at(2), kind: 'tftp', ip, step: 'file', outcome: 'ok', detail: { file: 'ipxe.efi', bytes: 1_015_808, blksize: 1468 } },
    { time: at(3), kind: 'dhcp', mac, ip: '0.0.0.0', step: 'offer', outcome: 'ok', detail: { ...dhcpDetail, client_class: 'iPXE', boot_file: `${PUBLIC}/boot.ipxe` } },
    { time: at(4), kind: 'http', ip, step: 'script', outcome: 'ok', detail: { path: '/boot.ipxe', status: 200 } },
    {
      time: at(5),
      kind: 'http',
      mac,
      ip,
      step: 'ipxe',
      outcome: 'ok',
      detail: { path: `/ipxe?mac=${hyp}&uuid=8d3c1f2e-0000-4000-8000-${mac.replace(/:/g, '')}&serial=SN-${mac.slice(-2)}&hostname=&arch=x86_64&platform=efi`, status: 200, group: 'rack1', profile: 'installer' },
    },
    { time: at(6), kind: 'http', mac, ip, step: 'kernel', outcome: 'ok', detail: { path: '/assets/fcos/kernel', status: 200, bytes: 4096, group: 'rack1', profile: 'installer' } },
    { time: at(7), kind: 'http', mac, ip, step: 'initrd', outcome: 'ok', detail: { path: '/assets/fcos/initramfs.img', status: 200, bytes: 8192, group: 'rack1', profile: 'installer' } },
    { time: at(8), kind: 'http', mac, ip, step: 'ignition', outcome: 'ok', detail: { path: `/ignition?mac=${hyp}`, status: 200, group: 'rack1', profile: 'installer' } },
  ]
  return all.slice(0, upTo)
}
