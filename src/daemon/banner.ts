/** The start-up block: one glance tells the operator what listens where and what is missing. */
import type { FirmwareReport } from './firmware.js'
import type { PxeInterface } from '../host/interfaces.js'
import { VERSION } from '../host/version.js'

/** What the banner shows. */
export interface BannerFacts {
  iface: PxeInterface
  dhcp: string
  tftp: string
  http: string
  firmware: FirmwareReport | undefined
  assetsDir: string
  dataDir: string
  groups: number
  profiles: number
}

/** Render the start-up block. */
export function renderBanner(f: BannerFacts): string {
  const rows: [string, string][] = [
    ['interface', `${f.iface.name} (mtu ${f.iface.mtu}${f.iface.others.length ? `; other interfaces: ${f.iface.others.join(', ')}` : ''})`],
    ['address', `${f.iface.address}/${f.iface.prefix}`],
    ['DHCP', f.dhcp],
    ['TFTP', f.tftp],
    ['HTTP', f.http],
    ['firmware', firmwareLine(f.firmware)],
    ['assets', f.assetsDir],
    ['data', f.dataDir],
    ['boot', `${f.groups} group${f.groups === 1 ? '' : 's'}, ${f.profiles} profile${f.profiles === 1 ? '' : 's'}`],
  ]
  const width = Math.max(...rows.map(([k]) => k.length))
  return [`pxebox ${VERSION} ready`, ...rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`)].join('\n')
}

function firmwareLine(report: FirmwareReport | undefined): string {
  if (!report) return 'not served (tftp disabled)'
  if (!report.manifest) return `${report.root}: no manifest.json (run firmware/fetch.sh)`
  const count = (s: string) => report.files.filter((x) => x.status === s).length
  return `${report.root}: ${count('ok')} ok, ${count('changed')} changed, ${count('missing')} missing`
}
