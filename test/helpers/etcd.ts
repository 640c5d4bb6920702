/**
 * A real 3-member etcd cluster for a test file (issue 17: "real etcd in the tests"): Debian's etcd-server binary
 * (scripts/deps.sh test), every member on 127.0.0.1 (or an address in a namespace, see EtcdPlace), client port `basePort + 2i` and peer port `basePort + 2i + 1`,
 * data under a fresh temporary folder. Each test file passes its own base port (see ETCD_PORTS), so files running at
 * once never share a cluster. The members are stopped by PID and the folder removed in the test's teardown, which
 * tap runs on failure too; a process exit hook SIGKILLs what is left if the test process dies first.
 *
 * Fast start: heartbeat 50 ms and election timeout 500 ms (etcd's defaults are 100/1000), so a cluster is healthy
 * in about 2 s and a new leader is elected about half a second after the old one is killed. fsync stays on.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'

/** Base ports of the test files that start a cluster: one block of 6 (3 members x client+peer) each, never shared. */
export const ETCD_PORTS = {
  storeContract: 23100,
  catalogShared: 23110,
  appliances: 23120,
  daemonStore: 23130,
  leaseBook: 23140,
  tls: 23150,
  sharedFiles: 23170,
  machineRecords: 23180,
  findings: 23190,
  paging: 23200,
} as const

/** The etcd binary: Debian's etcd-server puts it on PATH. */
export const ETCD_BIN = process.env.PXEBOX_TEST_ETCD ?? 'etcd'

/** One member of the cluster. */
export interface EtcdMember {
  readonly name: string
  readonly clientUrl: string
  readonly peerUrl: string
  readonly dataDir: string
  /** The running process, or undefined while stopped. */
  process(): ChildProcess | undefined
}

/** A running cluster. */
export interface EtcdCluster {
  /** Every member's client URL (what a pxebox `store.endpoints` lists). */
  readonly endpoints: string[]
  readonly members: readonly EtcdMember[]
  /** Stop member `i` (SIGTERM, SIGKILL after 3 s; `kill: true` sends SIGKILL at once) and wait for its exit. */
  stop(i: number, opts?: { kill?: boolean }): Promise<void>
  /** Start member `i` again on its data folder (it rejoins); resolves when it reports healthy. */
  start(i: number): Promise<void>
  /** Stop every member (the cluster is down; `startAll` brings it back). */
  stopAll(opts?: { kill?: boolean }): Promise<void>
  /** Start every stopped member on its data; resolves when all are healthy (one alone has no quorum). */
  startAll(): Promise<void>
  /** The index of the current leader, asked of the running members. */
  leader(): Promise<number>
  /** The raft term (the highest a running member reports): it moves with every leader election. Not with `tls`. */
  term(): Promise<number>
  /** SIGKILL the leader; resolves with its index once it exited. */
  killLeader(): Promise<number>
  /** Resolves when every running member answers /health with true (rejects after `ms`). */
  healthy(ms?: number): Promise<void>
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** POST to etcd's JSON gateway (`/v3/...`) of one member; undefined when it does not answer. */
async function gateway(url: string, path: string): Promise<Record<string, unknown> | undefined> {
  try {
    const res = await fetch(url + path, { method: 'POST', body: '{}', signal: AbortSignal.timeout(1000) })
    return res.ok ? ((await res.json()) as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

async function memberHealthy(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) })
    return res.ok && ((await res.json()) as { health?: string }).health === 'true'
  } catch {
    return false
  }
}

/** Where a cluster listens: by default on 127.0.0.1 in the test's own namespace. */
export interface EtcdPlace {
  /** The address every member listens on (its client and peer ports differ). */
  host?: string
  /** A network namespace to run the members in (`ip netns exec` execs, so each PID is etcd's own). */
  netns?: string
  /**
   * Client TLS (etcd --cert-file/--key-file, and with --client-cert-auth the client must present a certificate the
   * CA signed): client URLs become https://. Health is then read from plain-HTTP metrics URLs (basePort + 6 + i,
   * etcd --listen-metrics-urls), since this helper's fetch has no client certificate; `leader()` does not work.
   */
  tls?: { certFile: string; keyFile: string; caFile: string }
}

/** Start a 3-member cluster on `basePort`..`basePort + 5`; stopped and removed when `t` ends (on failure too). */
export async function startEtcdCluster(t: Test, basePort: number, size = 3, place: EtcdPlace = {}): Promise<EtcdCluster> {
  let cluster: (EtcdCluster & { close(): Promise<void> }) | undefined
  t.teardown(() => cluster?.close())
  cluster = await runEtcdCluster(basePort, size, place)
  return cluster
}

/**
 * The same cluster for callers without a tap test (bench/dhcp.ts): `close()` stops every member by PID and removes
 * the data. A cluster that never becomes healthy is closed before the error is thrown.
 */
export async function runEtcdCluster(basePort: number, size = 3, place: EtcdPlace = {}): Promise<EtcdCluster & { close(): Promise<void> }> {
  const host = place.host ?? '127.0.0.1'
  const root = await mkdtemp(join(tmpdir(), `pxebox-etcd-${basePort}-`))
  const token = `pxebox-test-${basePort}-${process.pid}`
  const tls = place.tls
  type Running = EtcdMember & { child?: ChildProcess; stderr: string; healthUrl: string }
  const members: Running[] = Array.from({ length: size }, (_, i) => {
    const m: Running = {
      name: `m${i}`,
      clientUrl: `${tls === undefined ? 'http' : 'https'}://${host}:${basePort + 2 * i}`,
      healthUrl: tls === undefined ? `http://${host}:${basePort + 2 * i}` : `http://${host}:${basePort + 6 + i}`,
      peerUrl: `http://${host}:${basePort + 2 * i + 1}`,
      dataDir: join(root, `m${i}`),
      stderr: '',
      process: () => m.child,
    }
    return m
  })
  const initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(',')
  const killAll = () => {
    for (const m of members) if (m.child && m.child.exitCode === null && m.child.signalCode === null) m.child.kill('SIGKILL')
  }
  process.once('exit', killAll)

  const launch = (i: number): void => {
    const m = members[i]!
    // prettier-ignore
    const args = [
      '--name', m.name, '--data-dir', m.dataDir,
      '--listen-client-urls', m.clientUrl, '--advertise-client-urls', m.clientUrl,
      '--listen-peer-urls', m.peerUrl, '--initial-advertise-peer-urls', m.peerUrl,
      '--initial-cluster', initialCluster, '--initial-cluster-state', 'new', '--initial-cluster-token', token,
      '--heartbeat-interval', '50', '--election-timeout', '500',
      '--logger', 'zap', '--log-level', 'error',
      ...(tls === undefined ? [] : ['--cert-file', tls.certFile, '--key-file', tls.keyFile, '--trusted-ca-file', tls.caFile, '--client-cert-auth', '--listen-metrics-urls', m.healthUrl]),
    ]
    const argv = place.netns === undefined ? [ETCD_BIN, ...args] : ['ip', 'netns', 'exec', place.netns, ETCD_BIN, ...args]
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] })
    m.stderr = ''
    child.stderr!.on('data', (d: Buffer) => {
      m.stderr = (m.stderr + d.toString()).slice(-4000)
    })
    child.on('error', (err) => {
      m.stderr += `\nspawn ${ETCD_BIN}: ${err.message} (install etcd-server: scripts/deps.sh test)`
    })
    m.child = child
  }

  const stop = async (i: number, opts: { kill?: boolean } = {}): Promise<void> => {
    const m = members[i]!
    const child = m.child
    m.child = undefined
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    const exited = once(child, 'exit')
    child.kill(opts.kill === true ? 'SIGKILL' : 'SIGTERM')
    // A leader stopped with SIGTERM tries to hand leadership over first, which waits when its peers are gone.
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000)
    await exited
    clearTimeout(timer)
  }

  const healthy = async (ms = 20_000): Promise<void> => {
    const deadline = Date.now() + ms
    for (;;) {
      const running = members.filter((m) => m.child !== undefined)
      for (const m of running) {
        if (m.child!.exitCode !== null || m.child!.signalCode !== null) throw new Error(`etcd member ${m.name} exited (${m.child!.exitCode ?? m.child!.signalCode}): ${m.stderr.trim()}`)
      }
      const ok = await Promise.all(running.map((m) => memberHealthy(m.healthUrl)))
      if (ok.every(Boolean)) return
      if (Date.now() > deadline) throw new Error(`etcd cluster on ${basePort} not healthy within ${ms} ms; ${running.map((m, i) => `${m.name}: ${ok[i] ? 'healthy' : 'not healthy'} ${m.stderr.trim().slice(-400)}`).join('; ')}`)
      await sleep(100)
    }
  }

  const leader = async (): Promise<number> => {
    for (let attempt = 0; attempt < 50; attempt++) {
      for (const m of members.filter((x) => x.child !== undefined)) {
        const status = await gateway(m.clientUrl, '/v3/maintenance/status')
        const list = await gateway(m.clientUrl, '/v3/cluster/member/list')
        const id = status?.leader
        const named = (list?.members as { ID: string; name: string }[] | undefined)?.find((x) => x.ID === id)
        if (named !== undefined) return members.findIndex((x) => x.name === named.name)
      }
      await sleep(100)
    }
    throw new Error(`etcd cluster on ${basePort}: no leader found`)
  }

  const term = async (): Promise<number> => {
    const terms = await Promise.all(members.filter((x) => x.child !== undefined).map((m) => gateway(m.clientUrl, '/v3/maintenance/status')))
    // The JSON gateway writes 64-bit integers as strings, inside `header`.
    const seen = terms.map((s) => Number((s?.header as { raft_term?: string } | undefined)?.raft_term ?? NaN)).filter((n) => Number.isFinite(n))
    if (seen.length === 0) throw new Error(`etcd cluster on ${basePort}: no member reports its raft term`)
    return Math.max(...seen)
  }

  const cluster: EtcdCluster = {
    endpoints: members.map((m) => m.clientUrl),
    members,
    stop,
    async start(i) {
      if (members[i]!.child !== undefined) return
      launch(i)
      await healthy()
    },
    async stopAll(opts) {
      await Promise.all(members.map((_, i) => stop(i, opts)))
    },
    async startAll() {
      members.forEach((m, i) => m.child === undefined && launch(i))
      await healthy()
    },
    leader,
    term,
    async killLeader() {
      const i = await leader()
      await stop(i, { kill: true })
      return i
    },
    healthy,
  }

  const close = async (): Promise<void> => {
    await Promise.all(members.map((_, i) => stop(i, { kill: true })))
    process.off('exit', killAll)
    await rm(root, { recursive: true, force: true })
  }
  for (let i = 0; i < size; i++) launch(i)
  try {
    await healthy()
  } catch (err) {
    await close()
    throw err
  }
  return { ...cluster, close }
}
