/**
 * What the daemon checks before it starts anything: the PXE interface and its address, the privileges the enabled
 * services' ports need, data_dir, and the DHCP range against the interface's subnet. Each problem is a StartError
 * naming the fix, raised while there is still nothing to close.
 */
import { mkdirSync } from 'node:fs'
import type { Config } from '../config/schema.js'
import { InterfaceError, listInterfaces, resolvePxeInterface, type PxeInterface } from '../host/interfaces.js'
import type { NativeLoad } from '../host/native.js'
import { privilegedPortProblem, readPortPrivileges } from '../host/privileges.js'
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
