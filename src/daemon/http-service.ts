/**
 * Starts the HTTP boot service: the fastify app from src/http/ with the daemon's boot store, listening on
 * `http.listen`. Kept apart from buildApp so tests can inject() without sockets.
 */
import type { EventSink } from '../machines/events.js'
import type { Logger } from '../host/log.js'
import { buildApp, type HttpDeps } from '../http/app.js'
import type { NativeLoad } from '../host/native.js'
import { VERSION } from '../host/version.js'
import type { BootStore } from '../catalog/boot-store.js'

/** Options for startHttp. */
export interface HttpServiceOptions {
  host: string
  port: number
  store: BootStore
  assetsDir: string
  /** The TFTP root, also served at /firmware/ for UEFI HTTP boot; absent when TFTP is off. */
  firmwareDir?: string
  publicUrl: string
  logger: Logger
  events: EventSink
  /** IPs pxebox has seen a MAC use, for `bind_to_lease` profiles (HttpDeps.addressesOf). */
  addressesOf?: (mac: string) => readonly string[]
  /** The operator's view (/v1, /ui/): machine store, API auth, overlay, tracking (HttpDeps.api). */
  api?: HttpDeps['api']
  /** `/metrics` registry fed with every service's events. */
  metrics?: HttpDeps['metrics']
  /** Where machines send syslog (HttpDeps.syslogAddress). */
  syslogAddress?: string
  /** `discovery.mode: hold` (HttpDeps.discovery). */
  discovery?: HttpDeps['discovery']
  /**
   * The native addon as the daemon loaded it (or why not); asset bodies go through its sendfile(2). Give a reason
   * without an addon for `http.sendfile: false`.
   */
  native: NativeLoad
}

/** A listening HTTP boot service. */
export interface HttpService {
  /** `host:port` actually bound (port 0 resolves to the chosen port). */
  readonly address: string
  close(): Promise<void>
}

/** Build the app and listen. Rejects with the listen error (EADDRINUSE, EACCES...) for the daemon to explain. */
export async function startHttp(opts: HttpServiceOptions): Promise<HttpService> {
  const app = buildApp({
    store: opts.store,
    assetsDir: opts.assetsDir,
    ...(opts.firmwareDir !== undefined ? { firmwareDir: opts.firmwareDir } : {}),
    publicUrl: opts.publicUrl,
    logger: opts.logger,
    events: opts.events,
    ...(opts.addressesOf !== undefined ? { addressesOf: opts.addressesOf } : {}),
    ...(opts.api !== undefined ? { api: opts.api } : {}),
    ...(opts.metrics !== undefined ? { metrics: opts.metrics } : {}),
    ...(opts.native.addon !== undefined ? { sendfile: opts.native.addon } : {}),
    ...(opts.discovery !== undefined ? { discovery: opts.discovery } : {}),
    ...(opts.syslogAddress !== undefined ? { syslogAddress: opts.syslogAddress } : {}),
    version: VERSION,
  })
  // Still correct without it, at about half of nginx's throughput with several clients (bench/http.sh).
  const { reason } = opts.native
  if (reason !== undefined) opts.logger.warn({ reason }, 'asset bodies are copied through Node: the sendfile addon is unavailable')
  try {
    await app.listen({ host: opts.host, port: opts.port })
  } catch (err) {
    await app.close()
    Object.assign(err as object, { address: opts.host, port: opts.port })
    throw err
  }
  const bound = app.server.address()
  const address = typeof bound === 'object' && bound ? `${bound.address}:${bound.port}` : `${opts.host}:${opts.port}`
  return {
    address,
    close: async () => {
      // Keep-alive connections from iPXE or curl must not hold the stop past SIGTERM's 2 s promise.
      app.server.closeAllConnections()
      await app.close()
    },
  }
}
