/**
 * `store.tls` against a real 3-member etcd that requires TLS from its clients (etcd --cert-file/--key-file,
 * --trusted-ca-file, --client-cert-auth), as README "Fleet" tells operators to run it: the Store contract passes over
 * TLS with a client certificate; a client without one, or trusting another CA, is refused with a clear error; and the
 * daemon started on that config serves and writes through it. The certificates are made here with openssl (a CA, a
 * server certificate for 127.0.0.1, a client certificate).
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { openEtcdStore, type EtcdTls } from '../../src/store/index.js'
import { storeContract } from './contract.js'
import { ETCD_PORTS, startEtcdCluster } from '../helpers/etcd.js'
import { runPxebox } from '../helpers/daemon.js'
import { loopbackConfigText } from '../helpers/loopback-config.js'

const run = promisify(execFile)
const dir = await mkdtemp(join(tmpdir(), 'pxebox-etcd-tls-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))

/** A CA named `name` and a certificate it signed for each of `leaves` (server: 127.0.0.1; client: client auth). */
async function pki(name: string): Promise<{ ca: string; server: { cert: string; key: string }; client: { cert: string; key: string } }> {
  const f = (x: string): string => join(dir, `${name}-${x}`)
  const ssl = (...args: string[]) => run('openssl', args)
  await ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', `/CN=${name} test CA`, '-keyout', f('ca-key.pem'), '-out', f('ca.pem'))
  for (const [leaf, ext] of [
    ['server', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth'],
    ['client', 'extendedKeyUsage=clientAuth'],
  ] as const) {
    await writeFile(f(`${leaf}.ext`), `${ext}\n`)
    await ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=pxebox-test-${leaf}`, '-keyout', f(`${leaf}-key.pem`), '-out', f(`${leaf}.csr`))
    await ssl('x509', '-req', '-in', f(`${leaf}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca-key.pem'), '-CAcreateserial', '-days', '2', '-extfile', f(`${leaf}.ext`), '-out', f(`${leaf}.pem`))
  }
  return { ca: f('ca.pem'), server: { cert: f('server.pem'), key: f('server-key.pem') }, client: { cert: f('client.pem'), key: f('client-key.pem') } }
}

const site = await pki('site')
const other = await pki('other')
const cluster = await startEtcdCluster(t, ETCD_PORTS.tls, 3, { tls: { certFile: site.server.cert, keyFile: site.server.key, caFile: site.ca } })
const clientTls: EtcdTls = { caFile: site.ca, certFile: site.client.cert, keyFile: site.client.key }
let places = 0

t.test('the Store contract over TLS with a client certificate', async (t) => {
  t.match(cluster.endpoints[0], /^https:\/\/127\.0\.0\.1:/)
  storeContract(t, async () => {
    const prefix = `/tls/${++places}`
    return { open: () => openEtcdStore({ endpoints: cluster.endpoints, prefix, tls: clientTls }) }
  })
})

t.test('refused with a clear error: no client certificate; a CA that did not sign the server; a file that is not there', async (t) => {
  const attempt = async (tls: EtcdTls | undefined): Promise<string> => {
    try {
      const s = await openEtcdStore({ endpoints: cluster.endpoints, prefix: '/tls/refused', ...(tls === undefined ? {} : { tls }), callTimeoutMs: 3000 })
      await s.close()
      return 'opened'
    } catch (err) {
      return (err as Error).message
    }
  }
  const noCert = await attempt({ caFile: site.ca })
  t.not(noCert, 'opened', `without a client certificate: ${noCert}`)
  const wrongCa = await attempt({ caFile: other.ca, certFile: site.client.cert, keyFile: site.client.key })
  t.not(wrongCa, 'opened', `trusting another CA: ${wrongCa}`)
  const plain = await attempt(undefined)
  t.not(plain, 'opened', `no TLS at all: ${plain}`)
  for (const m of [noCert, wrongCa, plain]) t.match(m, /etcd/, 'the error names etcd')
  const missing = await attempt({ caFile: join(dir, 'no-such-ca.pem') })
  t.match(missing, /no-such-ca\.pem/, 'a missing file is named')
})

t.test('the daemon on store.tls: serves, says where, and API writes go through TLS', async (t) => {
  const work = await mkdtemp(join(tmpdir(), 'pxebox-etcd-tls-daemon-'))
  t.teardown(() => rm(work, { recursive: true, force: true }))
  await mkdir(join(work, 'assets'))
  const token = 'etcd-tls-test-token'
  const store = `store: { backend: etcd, endpoints: [${cluster.endpoints.join(', ')}], prefix: /tls/daemon, site: tls-site, name: tls-a, tls: { ca_file: ${site.ca}, cert_file: ${site.client.cert}, key_file: ${site.client.key} } }`
  const config = join(work, 'pxebox.yaml')
  await writeFile(config, loopbackConfigText(work, 'tftp: { enabled: false }', 'tracking: { enabled: false }', store, `api: { token: ${token} }`))
  const d = runPxebox(['serve', '--config', config])
  t.teardown(() => d.kill())
  const url = `http://127.0.0.1:${(await d.waitFor(/listening on 127\.0\.0\.1:(\d+)/))[1]}`
  t.match(d.stdout() + d.stderr(), /https:\/\/127\.0\.0\.1:\d+/, 'the banner names the https endpoints')
  const put = await fetch(`${url}/v1/profiles/over-tls`, { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ boot: { kernel: '/assets/k' } }) })
  t.equal(put.status, 200, 'an API write over TLS')
  const s = await openEtcdStore({ endpoints: cluster.endpoints, prefix: '/tls/daemon', tls: clientTls })
  t.teardown(() => s.close())
  t.ok((await s.list('profile')).some((e) => e.id === 'over-tls'), 'the profile is in etcd')
})
