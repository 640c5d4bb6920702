/**
 * One pxebox daemon of a fleet test (issue 17) in its appliance namespace of a FleetLab (fleet-lab.ts): proxy DHCP on
 * its site's bridge, HTTP on every address of its namespace, its store the lab's etcd; and its end, killed with
 * SIGKILL until another appliance lists it gone. test/daemon/fleet-findings.test.ts and test/store/fleet-sites.test.ts
 * start theirs the same way and differ only in the name, site, store prefix and tracking section.
 */
import type { Test } from 'tap'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runPxebox, type RunningPxebox } from './daemon.js'
import type { FleetAppliance, FleetLab } from './fleet-lab.js'
import { untilGone, type GoneAnswer } from './fleet-api.js'

/** The HTTP port every fleet appliance listens on (each has its own namespace). */
export const FLEET_HTTP_PORT = 8080
/** The registry's heartbeat lease (store/etcd-registry.ts), plus one heartbeat interval (ttl/3) of slack. */
export const GONE_WITHIN_MS = 10_000 + 3_400

/** What sets one fleet appliance apart from the others. */
export interface FleetApplianceOptions {
  /** The appliance's name in the registry (store.name). */
  name: string
  /** Its site (store.site). */
  site: string
  /** The etcd key prefix, one per test file (store.prefix), also naming its temporary folder. */
  prefix: string
  /** The config's `tracking:` section, as YAML flow text. */
  tracking: string
}

/** A running fleet appliance: its daemon and its API's URL on the management network. */
export interface RunningFleetAppliance {
  d: RunningPxebox
  url: string
}

/** A daemon on `where` over the lab's etcd, ready; killed and its folder removed when `t` ends. */
export async function startFleetAppliance(t: Test, lab: FleetLab, where: FleetAppliance, o: FleetApplianceOptions): Promise<RunningFleetAppliance> {
  const dir = await mkdtemp(join(tmpdir(), `pxebox-${o.prefix}-${o.name}-`))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  for (const d of ['firmware', 'assets', 'data']) await mkdir(join(dir, d))
  await writeFile(join(dir, 'assets', 'k'), 'kernel')
  await writeFile(
    join(dir, 'config.yaml'),
    [
      `interface: ${where.pxeIf}`,
      `address: ${where.pxeAddr}`,
      'data_dir: ./data',
      'assets_dir: ./assets',
      'dhcp: { mode: proxy }',
      'tftp: { root: ./firmware }',
      `tracking: ${o.tracking}`,
      // 0.0.0.0: machines reach it on the site bridge, the test on the management network.
      `http: { listen: "0.0.0.0:${FLEET_HTTP_PORT}", public_url: "http://${where.pxeAddr}:${FLEET_HTTP_PORT}" }`,
      'profiles: { p: { boot: { kernel: /assets/k } } }',
      'groups: [{ id: everyone, profile: p }]',
      `store: { backend: etcd, endpoints: [${lab.endpoints.join(', ')}], prefix: /${o.prefix}, site: ${o.site}, name: ${o.name} }`,
      '',
    ].join('\n'),
  )
  const d = runPxebox(['serve', '--config', join(dir, 'config.yaml')], { netns: where.ns })
  t.teardown(() => d.kill())
  // A readiness wait, not a speed goal.
  await d.waitFor(/pxebox \S+ ready/, 60_000)
  return { d, url: `http://${where.mgmtAddr}:${FLEET_HTTP_PORT}` }
}

/**
 * Kills appliance `name` (`victim`) with SIGKILL by PID, so it cannot deregister, and waits until the appliance at
 * `observerUrl` lists it gone: untilGone's answer, timed from the kill.
 */
export async function killUntilGone(t: Test, victim: RunningFleetAppliance, name: string, observerUrl: string): Promise<GoneAnswer> {
  const pid = victim.d.child.pid
  t.ok(pid !== undefined && pid > 0, `${name} runs as its own process (ip netns exec execs)`)
  const killedAt = Date.now()
  process.kill(pid!, 'SIGKILL')
  await victim.d.exited
  return untilGone(observerUrl, name, killedAt)
}
