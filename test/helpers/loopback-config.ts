/**
 * The smallest config a daemon test can start on this box: everything on loopback, no DHCP, HTTP on a free port,
 * one profile and one group so the catalog is not empty. Tests add the keys they are about.
 */
import { join } from 'node:path'

/** config.yaml text over `dir` (which holds `data/` and `assets/`), with `extra` lines appended. */
export function loopbackConfigText(dir: string, ...extra: string[]): string {
  return [
    'interface: lo',
    'address: 127.0.0.1',
    `data_dir: ${join(dir, 'data')}`,
    `assets_dir: ${join(dir, 'assets')}`,
    'dhcp: { mode: off }',
    'http: { listen: "127.0.0.1:0" }',
    'profiles: { p: { boot: { kernel: /assets/k } } }',
    'groups: [{ id: g, profile: p }]',
    ...extra,
  ].join('\n')
}
