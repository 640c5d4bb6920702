/** What the DHCP side needs from a machine's matched group (config `groups[].pxe`, `boot_file`, `chainload_ipxe`, `loader`). */
import type { DhcpMachineSettings } from './proxy-policy.js'
import type { BootMatch } from '../catalog/state.js'
import { effectiveLoader } from '../catalog/model.js'

/**
 * DHCP settings for a match result. A machine that matches no group still PXE-boots (it gets iPXE and then a clear
 * 404 from `/ipxe` naming its labels), which is what an operator racking a new server wants to see in the logs.
 */
export function dhcpSettingsFor(match: BootMatch | undefined): DhcpMachineSettings {
  if (!match) return { pxe: true, chainloadIpxe: false }
  const g = match.group
  return {
    pxe: g.pxe,
    chainloadIpxe: g.chainloadIpxe,
    group: g.id,
    loader: effectiveLoader(g, match.profile),
    ...(g.bootFile !== undefined ? { bootFile: g.bootFile } : {}),
  }
}
