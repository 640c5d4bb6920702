/**
 * What the daemon checks before it starts anything: the PXE interface and its address, the privileges the enabled
 * services' ports need, data_dir, and the DHCP range against the interface's subnet. Each problem is a StartError
 * naming the fix, raised while there is still nothing to close. One check runs later, once the machine records are
 * read (it needs their count): whether the kernel's neighbour table fits the VLAN, a warning rather than an error.
 */
import { mkdirSync } from 'node:fs'
import type { Config } from '../config/schema.js'
import { InterfaceError, listInterfaces, resolvePxeInterface, type PxeInterface } from '../host/interfaces.js'
import type { NativeLoad } from '../host/native.js'
import { privilegedPortProblem, readPortPrivileges } from '../host/privileges.js'
import { ipToInt } from '../host/ipv4.js'
import type { Logger } from '../host/log.js'
import { neighbourTableAdvice, type NeighbourLimits } from '../host/neighbour-table.js'
import { AddressConfigError, checkDhcpRange } from './dhcp.js'
import { StartError } from './start-error.js'

/** Well-known ports (RFC 2131 section 4.1, PXE 2.1 spec, RFC 1350). */
export const PORTS = { dhcp: 67, pxe: 4011, tftp: 69 } as const

/** What the checks found out. */
export interface Preflight {
  readonly iface: PxeInterface
  /** `http.listen` split. */
  readonly httpHost: string
  readonly httpPort: number
}

/** Run every check; throws StartError for the first problem. `native` is the daemon's one load of the addon. */
export function preflight(config: Config, native: NativeLoad): Preflight {
  let iface: PxeInterface
  try {
    iface = resolvePxeInterface(config.interface, config.address, listInterfaces(native))
  } catch (err) {
    if (err instanceof InterfaceError) throw new StartError(err.code, err.message)
    throw err
  }
  const httpPort = Number(config.http.listen.split(':').pop())
  const httpHost = config.http.listen.slice(0, config.http.listen.lastIndexOf(':'))
  const ports: Record<string, number> = {}
  if (config.dhcp.mode !== 'off') Object.assign(ports, { dhcp: PORTS.dhcp, 'proxyDHCP': PORTS.pxe })
  if (config.tftp.enabled) ports.tftp = PORTS.tftp
  if (config.http.enabled) ports.http = httpPort
  const privilegeProblem = privilegedPortProblem(ports, readPortPrivileges())
  if (privilegeProblem) throw new StartError('PXEBOX_PRIVILEGES', privilegeProblem)

  try {
    mkdirSync(config.data_dir, { recursive: true })
  } catch (err) {
    throw new StartError('PXEBOX_DATA_DIR', `data_dir ${config.data_dir} cannot be created: ${(err as Error).message}`)
  }
  try {
    checkDhcpRange(config, iface)
  } catch (err) {
    if (err instanceof AddressConfigError) throw new StartError(err.code, err.message)
    throw err
  }
  return { iface, httpHost, httpPort }
}

/**
 * Warns when the kernel's neighbour (ARP) table cannot hold every machine pxebox may answer at once: the machines it
 * knows, or the addresses its authoritative range hands out, whichever is more (host/neighbour-table.ts). A warning,
 * not a refusal: a small lab is fine, and the limits are the box's, not pxebox's. Returns the advice logged.
 */
export function warnNeighbourTable(config: Config, knownMachines: number, logger: Logger, limits: NeighbourLimits | undefined): string | undefined {
  if (limits === undefined) return undefined
  const range = config.dhcp.mode === 'authoritative' ? config.dhcp.range : undefined
  const start = range === undefined ? undefined : ipToInt(range.start)
  const end = range === undefined ? undefined : ipToInt(range.end)
  const rangeSize = start === undefined || end === undefined ? 0 : Math.max(0, end - start + 1)
  const machines = Math.max(knownMachines, rangeSize)
  const advice = neighbourTableAdvice(machines, limits)
  if (advice !== undefined) logger.warn({ machines, known_machines: knownMachines, range_size: rangeSize, gc_thresh2: limits.gcThresh2, gc_thresh3: limits.gcThresh3 }, advice)
  return advice
}
