/**
 * Can this process bind the low ports PXE needs (67, 69, 4011 is high but 67/69 are not)? Checked before any socket
 * is opened so the operator gets one message naming the fix instead of an EACCES from deep inside a server.
 */
import { readFileSync } from 'node:fs'

/** CAP_NET_BIND_SERVICE is capability bit 10 (linux/capability.h). */
const CAP_NET_BIND_SERVICE = 10n

/** What the kernel lets this process do, read from /proc. Parameters exist so tests can describe any process. */
export interface PortPrivileges {
  /** Ports below this need the capability (net.ipv4.ip_unprivileged_port_start, 1024 by default). */
  unprivilegedPortStart: number
  hasBindCapability: boolean
}

/** Read the current process's port privileges from /proc. */
export function readPortPrivileges(read: (path: string) => string = (p) => readFileSync(p, 'utf8')): PortPrivileges {
  let start = 1024
  try {
    start = Number(read('/proc/sys/net/ipv4/ip_unprivileged_port_start').trim())
  } catch {
    // Kernels before 4.11 have no such sysctl: 1024 is the fixed limit there.
  }
  let capEff = 0n
  try {
    const line = read('/proc/self/status').split('\n').find((l) => l.startsWith('CapEff:'))
    if (line) capEff = BigInt('0x' + line.split(/\s+/)[1])
  } catch {
    // No /proc: assume no capability; the bind itself will tell.
  }
  return { unprivilegedPortStart: start, hasBindCapability: ((capEff >> CAP_NET_BIND_SERVICE) & 1n) === 1n }
}

/**
 * The message to show when `ports` (service name -> port) cannot be bound, or null when all can. It names the three
 * usual fixes, because "permission denied" alone sends operators searching.
 */
export function privilegedPortProblem(ports: Record<string, number>, priv: PortPrivileges, binary = process.execPath): string | null {
  if (priv.hasBindCapability) return null
  const low = Object.entries(ports).filter(([, port]) => port < priv.unprivilegedPortStart)
  if (low.length === 0) return null
  const list = low.map(([name, port]) => `${name} ${port}`).join(', ')
  return [
    `pxebox needs to bind privileged ports (${list}) but lacks CAP_NET_BIND_SERVICE.`,
    'Fix one of:',
    '  - run it under systemd with systemd/pxebox.service (AmbientCapabilities=CAP_NET_BIND_SERVICE CAP_NET_RAW)',
    `  - grant the capability to node: sudo setcap 'cap_net_bind_service,cap_net_raw=+ep' ${binary}`,
    '  - run it as root (sudo pxebox serve --config ...)',
    '  - or turn the service off in config (dhcp.mode: off, tftp.enabled: false) or move HTTP to a port >= ' + priv.unprivilegedPortStart,
  ].join('\n')
}
