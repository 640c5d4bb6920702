/**
 * The HTTP boot service: `buildApp(deps)` returns a fastify instance (not listening) serving the Matchbox-compatible
 * endpoints, assets and a status page. Tests use `app.inject()`; the daemon calls `app.listen()`.
 */
import { fastify, LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import { discardEvents, type EventSink } from '../machines/events.js'
import { silentLogger, type Logger } from '../host/log.js'
import { bootstrapScript } from '../boot/ipxe-script.js'
import type { BootState } from '../catalog/state.js'
import { recentMachines, type DiscoverySettings, type HttpContext } from './context.js'
import { openAssetSender, type NativeSendfile } from './sendfile.js'
import { factLabels } from '../boot/inventory.js'
import type { Labels } from '../catalog/labels.js'
import { registerBootRoutes } from './boot-routes.js'
import { registerAssetRoutes } from './asset-routes.js'
import { statusPage } from './status-page.js'
import { registerApi } from './api/plugin.js'
import type { ApiDeps } from './api/deps.js'
import { registerUiRoutes } from './api/ui-routes.js'
import { statusCounts } from './api/views.js'
import { createMetrics, registerMetricsRoute, type Metrics } from './metrics.js'

/** What the HTTP service needs. */
export interface HttpDeps {
  /** Current boot state (a BootStore, or `{ get: () => state }` in tests). */
  readonly store: { get(): BootState }
  /** Root of `/assets/`. */
  readonly assetsDir: string
  /** Root of `/firmware/` (the TFTP root): UEFI HTTP boot clients fetch their EFI binary there. */
  readonly firmwareDir?: string
  /** Base URL machines reach this server at (e.g. http://10.0.0.2:8080); used for absolute URLs in scripts. */
  readonly publicUrl: string
  readonly logger?: Logger
  readonly events?: EventSink
  /** pxebox version for the status page. */
  readonly version: string
  /**
   * IPv4 addresses pxebox has seen a MAC use on the PXE VLAN (its DHCP traffic), most recent first: profiles with
   * `bind_to_lease` serve only to those. The daemon wires the address tracker here. Default: none known.
   */
  readonly addressesOf?: (mac: string) => readonly string[]
  /**
   * The operator's view: `/v1` API and `/ui/` dashboard (src/http/api/). Absent: neither is served. Its machine
   * store also answers `installedAt` for boot_once profiles unless that is given.
   */
  readonly api?: Omit<ApiDeps, 'store' | 'version' | 'addressesOf' | 'assetsDir' | 'publishEventStats'>
  /** When the machine with this MAC reported installed (boot_once profiles then boot the local disk). */
  readonly installedAt?: (mac: string) => string | undefined
  /** `discovery.mode: hold` (HttpContext.discovery). Absent: `/ipxe` answers 404 for a machine no group matches. */
  readonly discovery?: DiscoverySettings
  /** IPv4 address machines should send syslog to (config `syslog:`, port 514); absent: no `set syslog` lines. */
  readonly syslogAddress?: string
  /** A machine's reported facts as labels; default: the API machine store's inventory (boot/inventory.ts). */
  readonly factsOf?: (mac: string) => Labels
  /** `/metrics` registry fed with every service's events (the daemon's). Absent: the app makes one fed by its own. */
  readonly metrics?: Metrics
  /** The native addon's sender (src/http/sendfile.ts, native/sendfile.c), loaded by the daemon; absent: asset bodies are copied. */
  readonly sendfile?: NativeSendfile
}

/** Build the app. Does not listen. */
export function buildApp(deps: HttpDeps): FastifyInstance {
  const logger = (deps.logger ?? silentLogger).child({ proto: 'http' })
  const app = fastify({
    loggerInstance: logger as FastifyBaseLogger,
    // One log line per request would dominate the cost of /ipxe; routes log what matters (misses, refusals).
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
  })
  // Operator's view (issue 9): /metrics always; /v1 and /ui/ when the daemon hands in a machine store.
  const ownMetrics = deps.metrics ? undefined : createMetrics()
  const events = deps.events ?? discardEvents
  const sink: EventSink = ownMetrics ? { record: (e) => (events.record(e), ownMetrics.sink.record(e)) } : events
  const api = deps.api
  const installedAt = deps.installedAt ?? (api ? (mac: string) => api.machines.get(mac)?.installed_at : undefined)
  const factsOf = deps.factsOf ?? (api ? (mac: string) => factLabels(api.machines.get(mac)?.inventory) : undefined)
  // One sending thread per app, stopped before the server closes: a body it still sends ends with ECANCELED.
  const sender = deps.sendfile ? openAssetSender(deps.sendfile) : undefined
  if (sender) app.addHook('preClose', async () => sender.close())
  const ctx: HttpContext = {
    store: deps.store,
    assetsDir: deps.assetsDir,
    publicUrl: deps.publicUrl,
    ...(sender ? { sender } : {}),
    logger,
    events: sink,
    ...(installedAt ? { installedAt } : {}),
    ...(deps.discovery ? { discovery: deps.discovery } : {}),
    ...(factsOf ? { factsOf } : {}),
    addressesOf: deps.addressesOf ?? (() => []),
    ...(deps.syslogAddress !== undefined ? { syslogAddress: deps.syslogAddress } : {}),
    bootstrap: bootstrapScript(deps.publicUrl, deps.syslogAddress),
    ...recentMachines(),
  }
  app.get('/', (_req, reply) => reply.type('text/html; charset=utf-8').send(statusPage(deps.store.get(), deps.version, deps.publicUrl)))
  registerBootRoutes(app, ctx)
  registerAssetRoutes(app, ctx)
  if (deps.firmwareDir !== undefined) registerAssetRoutes(app, ctx, '/firmware/', deps.firmwareDir)
  const metrics = deps.metrics ?? ownMetrics!
  registerMetricsRoute(app, metrics)
  if (api) {
    const now = api.now ?? Date.now
    // Statuses come from timelines: none are counted in the seconds after a restart while those are still read.
    metrics.sources.bootCounts ??= () => (api.machines.timelinesPending() > 0 ? {} : statusCounts(api.machines.list(), deps.store.get(), now(), api.stuckAfterMs))
    registerApi(app, {
      ...api,
      store: deps.store,
      version: deps.version,
      addressesOf: ctx.addressesOf,
      assetsDir: deps.assetsDir,
      publishEventStats: (stats) => (metrics.sources.eventStreams = stats),
    })
    registerUiRoutes(app)
  }
  app.setNotFoundHandler((req, reply) => reply.code(404).type('text/plain; charset=utf-8').send(`no such endpoint: ${req.method} ${req.url.split('?')[0]}\n`))
  app.setErrorHandler((err: Error & { statusCode?: number }, req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500
    if (status === 500) logger.error({ err, path: req.url }, 'request failed')
    return reply.code(status).type('text/plain; charset=utf-8').send(`${status === 500 ? 'internal error' : err.message}\n`)
  })
  return app
}
