import t from 'tap'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { ago, bootEvents, operatorApp, TOKEN } from './fixture.js'

const AUTH = { authorization: `Bearer ${TOKEN}` }
const M1 = '52:54:00:00:09:01'
const M2 = '52:54:00:00:09:02'

t.test('GET /v1/machines: stuck and failed first, with status, stage and summary', async (t) => {
  const o = await operatorApp(t, { token: TOKEN, stuckAfterMs: 300_000 })
  const now = Date.now()
  o.feed(bootEvents(M1, '10.213.9.11', 9, now - 30_000)) // reached ignition: done for a live... rack1 is boot_once -> booting
  o.feed(bootEvents(M2, '10.213.9.12', 8, now - 900_000)) // stopped after initrd 15 min ago: stuck
  o.feed([{ time: ago(5, now), kind: 'http', mac: '52:54:00:00:09:03', ip: '10.213.9.13', step: 'kernel', outcome: 'not found', detail: { path: '/assets/fcos/kernel', status: 404 } }])
  const r = await o.app.inject({ url: '/v1/machines' })
  t.equal(r.statusCode, 200)
  const body = r.json()
  t.same(body.machines.map((m: { mac: string; status: string; stage?: string }) => [m.mac, m.status, m.stage]), [
    ['52:54:00:00:09:03', 'failed', undefined],
    [M2, 'stuck', 'initrd'],
    [M1, 'booting', 'ignition'],
  ])
  t.same(body.counts, { failed: 1, stuck: 1, booting: 1 })
  t.match(body.machines[1].summary, /^no progress after initrd for 1[45] min$/)
  t.equal(body.machines[0].summary, 'kernel: not found (/assets/fcos/kernel 404)')
  const m1 = body.machines[2]
  t.equal(m1.final_stage, 'installed', 'boot_once profile ends at the installed callback')
  t.equal(m1.serial, 'SN-01')
  t.equal(m1.uuid, '8d3c1f2e-0000-4000-8000-525400000901')
  t.equal(m1.arch, 'x86_64')
  t.equal(m1.nic_vendor, 'QEMU/KVM')
  t.same(m1.ips, ['10.213.9.11'])
  t.equal(m1.group, 'rack1')
  t.equal(m1.boots, 1, 'ROM DHCP, TFTP, iPXE DHCP and the script are one attempt')
  t.ok(m1.timeline.some((e: { source: string; stage: string }) => e.source === 'tftp' && e.stage === 'tftp'), 'TFTP by IP only is attributed via the 4011 ACK address')
  const only = await o.app.inject({ url: '/v1/machines?status=stuck' })
  t.same(only.json().machines.map((m: { mac: string }) => m.mac), [M2])
})

t.test('GET one machine, its timeline; 404 and 400', async (t) => {
  const o = await operatorApp(t, { token: TOKEN })
  o.feed(bootEvents(M1, '10.213.9.11', 9, Date.now() - 30_000))
  const one = await o.app.inject({ url: '/v1/machines/52-54-00-00-09-01' })
  t.equal(one.statusCode, 200)
  t.equal(one.json().mac, M1)
  const tl = await o.app.inject({ url: `/v1/machines/${M1}/timeline` })
  t.equal(tl.statusCode, 200)
  t.same(
    tl.json().timeline.map((e: { stage?: string }) => e.stage),
    ['dhcp', 'dhcp', 'tftp', 'dhcp', 'script', 'script', 'kernel', 'initrd', 'ignition'],
  )
  t.equal((await o.app.inject({ url: '/v1/machines/52:54:00:00:00:99' })).statusCode, 404)
  t.equal((await o.app.inject({ url: '/v1/machines/52:54:00:00:00:99/timeline' })).statusCode, 404)
  const bad = await o.app.inject({ url: '/v1/machines/not-a-mac-at-all' })
  t.equal(bad.statusCode, 400)
  t.match(bad.json().error, /not a MAC address/)
  t.equal((await o.app.inject({ url: '/v1/nothing' })).statusCode, 404)
})

t.test('writes: 401 without or with a wrong token and nothing changes; 403 when no token is configured', async (t) => {
  const o = await operatorApp(t, { token: TOKEN })
  o.feed(bootEvents(M1, '10.213.9.11', 9, Date.now() - 30_000))
  await o.machines.markInstalled(M1, '10.213.9.11')
  const before = JSON.stringify(o.machines.get(M1))
  const groupsBefore = o.store.get().groups.map((g) => g.id)
  const writes = [
    { method: 'PATCH' as const, url: `/v1/machines/${M1}`, payload: { labels: { rack: 'r1' } } },
    { method: 'POST' as const, url: `/v1/machines/${M1}/rearm` },
    { method: 'DELETE' as const, url: `/v1/machines/${M1}` },
    { method: 'PUT' as const, url: '/v1/groups/new', payload: { id: 'new', profile: 'live', selector: { serial: 'X' } } },
    { method: 'DELETE' as const, url: '/v1/groups/new' },
    { method: 'PUT' as const, url: '/v1/profiles/p2', payload: { boot: { kernel: '/assets/k' } } },
    { method: 'DELETE' as const, url: '/v1/profiles/p2' },
  ]
  for (const w of writes) {
    for (const headers of [{}, { authorization: 'Bearer wrong-token-0123456789' }, { authorization: `Basic ${TOKEN}` }]) {
      const r = await o.app.inject({ ...w, headers })
      t.equal(r.statusCode, 401, `${w.method} ${w.url} ${JSON.stringify(headers)}`)
      t.equal(r.headers['www-authenticate'], 'Bearer realm="pxebox"')
    }
  }
  t.equal(JSON.stringify(o.machines.get(M1)), before, 'machine record untouched')
  t.same(o.store.get().groups.map((g) => g.id), groupsBefore, 'groups untouched')
  t.same(await readdir(join(o.dataDir, 'boot')).catch(() => []), [], 'no overlay file written')

  const open = await operatorApp(t, {})
  const r = await open.app.inject({ method: 'PUT', url: '/v1/groups/new', payload: { id: 'new', profile: 'live' } })
  t.equal(r.statusCode, 403)
  t.match(r.json().error, /writes are disabled/)
})

t.test('reads need the token when open_reads is false', async (t) => {
  const o = await operatorApp(t, { token: TOKEN, openReads: false })
  for (const url of ['/v1/machines', '/v1/groups', '/v1/profiles', '/v1/leases', '/v1/findings', '/v1/events']) {
    t.equal((await o.app.inject({ url })).statusCode, 401, url)
  }
  t.equal((await o.app.inject({ url: '/v1/machines', headers: AUTH })).statusCode, 200)
  t.equal((await o.app.inject({ url: '/v1/openapi.json' })).statusCode, 200, 'the API description is open')
  t.equal((await o.app.inject({ url: '/metrics' })).statusCode, 200, 'metrics are open')
})

t.test('labels, re-arm and forget with the token', async (t) => {
  const o = await operatorApp(t, { token: TOKEN })
  o.feed(bootEvents(M1, '10.213.9.11', 9, Date.now() - 30_000))
  const p = await o.app.inject({ method: 'PATCH', url: `/v1/machines/${M1}`, headers: AUTH, payload: { labels: { rack: 'r1', row: 'b' } } })
  t.equal(p.statusCode, 200)
  t.same(p.json().labels, { rack: 'r1', row: 'b' })
  const p2 = await o.app.inject({ method: 'PATCH', url: `/v1/machines/${M1}`, headers: AUTH, payload: { labels: { row: null } } })
  t.same(p2.json().labels, { rack: 'r1' })
  const bad = await o.app.inject({ method: 'PATCH', url: `/v1/machines/${M1}`, headers: AUTH, payload: { labels: { rack: 'r1' }, extra: 1 } })
  t.equal(bad.statusCode, 400, 'unknown body keys are refused, not stripped')
  t.equal((await o.app.inject({ method: 'PATCH', url: '/v1/machines/52:54:00:00:00:99', headers: AUTH, payload: { labels: {} } })).statusCode, 404)
  t.equal((await o.app.inject({ method: 'POST', url: '/v1/machines/52:54:00:00:00:99/rearm', headers: AUTH })).statusCode, 404)
  const del = await o.app.inject({ method: 'DELETE', url: `/v1/machines/${M1}`, headers: AUTH })
  t.equal(del.statusCode, 204)
  t.equal(o.machines.get(M1), undefined)
  t.equal((await o.app.inject({ method: 'DELETE', url: `/v1/machines/${M1}`, headers: AUTH })).statusCode, 404)
})

t.test('installed callback: from the machine without a token, refused from elsewhere, with the token from anywhere', async (t) => {
  const o = await operatorApp(t, { token: TOKEN })
  o.feed(bootEvents(M1, '10.213.9.11', 9, Date.now() - 30_000))
  const elsewhere = await o.app.inject({ method: 'POST', url: `/v1/machines/${M1}/installed`, remoteAddress: '10.213.9.99' })
  t.equal(elsewhere.statusCode, 403)
  t.match(elsewhere.json().error, /10\.213\.9\.99 is not an address pxebox has seen/)
  t.equal(o.machines.get(M1)!.installed_at, undefined, 'refusal changes nothing')
  t.equal((await o.app.inject({ method: 'POST', url: `/v1/machines/${M1}/installed`, remoteAddress: '10.213.9.11', headers: { authorization: 'Bearer nope-nope-nope-nope' } })).statusCode, 401)
  t.equal((await o.app.inject({ method: 'POST', url: '/v1/machines/52:54:00:00:00:99/installed', remoteAddress: '10.213.9.11' })).statusCode, 404)
  const ok = await o.app.inject({ method: 'GET', url: `/v1/machines/${M1}/installed`, remoteAddress: '10.213.9.11' })
  t.equal(ok.statusCode, 200)
  t.equal(ok.json().boots_local, true)
  const view = (await o.app.inject({ url: `/v1/machines/${M1}` })).json()
  t.equal(view.status, 'done')
  t.equal(view.stage, 'installed')
  t.equal(view.installs, 1)
  const byOperator = await o.app.inject({ method: 'POST', url: `/v1/machines/${M2}/installed`, remoteAddress: '10.213.9.200', headers: AUTH })
  t.equal(byOperator.statusCode, 200, 'the token marks even an unseen machine')
  // Written before the answer: a new store over the same data_dir sees it at once.
  t.ok(((await o.dataStore.get('machine', M2))?.value as { installed_at?: string }).installed_at)
})

t.test('groups and profiles: read all, write the API overlay, refuse config-defined and unloadable changes', async (t) => {
  const o = await operatorApp(t, { token: TOKEN })
  const groups = (await o.app.inject({ url: '/v1/groups' })).json().groups
  t.same(groups.map((g: { id: string; managed_by_api: boolean }) => [g.id, g.managed_by_api]), [['default', false], ['rack1', false]])
  const profiles = (await o.app.inject({ url: '/v1/profiles' })).json().profiles
  t.same(profiles.find((p: { id: string }) => p.id === 'installer').boot_once, true)
  t.equal((await o.app.inject({ url: '/v1/groups/rack1' })).json().profile, 'installer')
  t.equal((await o.app.inject({ url: '/v1/groups/nope' })).statusCode, 404)
  t.equal((await o.app.inject({ url: '/v1/profiles/nope' })).statusCode, 404)
  t.same((await o.app.inject({ url: '/v1/profiles/live' })).json().boot.initrd, [{ name: 'initramfs.img', url: '/assets/fcos/initramfs.img' }])

  const conflict = await o.app.inject({ method: 'PUT', url: '/v1/groups/rack1', headers: AUTH, payload: { id: 'rack1', profile: 'live' } })
  t.equal(conflict.statusCode, 409)
  const missing = await o.app.inject({ method: 'PUT', url: '/v1/groups/g2', headers: AUTH, payload: { id: 'g2', profile: 'ghost', selector: { serial: 'S2' } } })
  t.equal(missing.statusCode, 422)
  t.match(missing.json().errors.join('\n'), /names profile "ghost", which does not exist/)
  t.same(await readdir(join(o.dataDir, 'boot')).catch(() => []), [], 'refused change wrote nothing')
  const mismatch = await o.app.inject({ method: 'PUT', url: '/v1/groups/g2', headers: AUTH, payload: { id: 'g3', profile: 'live' } })
  t.equal(mismatch.statusCode, 400)
  const badBody = await o.app.inject({ method: 'PUT', url: '/v1/groups/g2', headers: AUTH, payload: { id: 'g2', profile: 'live', selectors: { serial: 'S2' } } })
  t.equal(badBody.statusCode, 400, 'a misspelt key is refused (it would match every machine in Matchbox)')

  const p = await o.app.inject({ method: 'PUT', url: '/v1/profiles/rescue', headers: AUTH, payload: { boot: { kernel: '/assets/fcos/kernel', args: ['rescue'] } } })
  t.equal(p.statusCode, 200)
  t.equal(p.json().managed_by_api, true)
  const g = await o.app.inject({ method: 'PUT', url: '/v1/groups/g2', headers: AUTH, payload: { id: 'g2', profile: 'rescue', selector: { serial: 'S2' } } })
  t.equal(g.statusCode, 200)
  t.equal(o.store.get().match({ serial: 'S2' })?.profile.id, 'rescue', 'the boot store serves the new group at once')
  const ipxe = await o.app.inject({ url: '/ipxe?serial=S2' })
  t.match(ipxe.body, /rescue/)
  t.same((await o.dataStore.get('group', 'g2'))?.value, { id: 'g2', profile: 'rescue', selector: { serial: 'S2' } })

  const inUse = await o.app.inject({ method: 'DELETE', url: '/v1/profiles/rescue', headers: AUTH })
  t.equal(inUse.statusCode, 422, 'a profile a group still names cannot go')
  t.equal((await o.app.inject({ method: 'DELETE', url: '/v1/groups/g2', headers: AUTH })).statusCode, 204)
  t.equal((await o.app.inject({ method: 'DELETE', url: '/v1/profiles/rescue', headers: AUTH })).statusCode, 204)
  t.equal((await o.app.inject({ method: 'DELETE', url: '/v1/groups/g2', headers: AUTH })).statusCode, 404)
  t.equal((await o.app.inject({ method: 'DELETE', url: '/v1/profiles/installer', headers: AUTH })).statusCode, 409)
  t.equal(o.store.get().match({ serial: 'S2' })?.group.id, 'default')
})

t.test('leases and findings: unavailable without tracking', async (t) => {
  const o = await operatorApp(t, { token: TOKEN })
  t.same((await o.app.inject({ url: '/v1/leases' })).json(), { available: false, leases: [] })
  t.same((await o.app.inject({ url: '/v1/findings' })).json(), { available: false, findings: [] })
})

t.test('boot-side findings (issue 19): listed without tracking, and on the machine they name', async (t) => {
  const mac = '52:54:00:00:09:01'
  const finding = {
    id: `ipxe-not-run:${mac}`,
    kind: 'ipxe-not-run',
    macs: [mac],
    since: '2026-11-27T18:01:00.000Z',
    explanation: 'firmware did not run iPXE: Secure Boot on? use loader: shim-grub. ...',
    evidence: [{ time: '2026-11-27T18:00:00.000Z', source: 'tftp', mac, what: 'snponly.efi sent in full' }],
  }
  const o = await operatorApp(t, { token: TOKEN, bootFindings: () => [finding] })
  o.feed(bootEvents(mac, '10.213.9.101', 3, Date.now() - 10_000))
  o.feed(bootEvents('52:54:00:00:09:02', '10.213.9.102', 3, Date.now() - 10_000))
  t.same((await o.app.inject({ url: '/v1/findings' })).json(), { available: false, findings: [finding] })
  const view = (await o.app.inject({ url: `/v1/machines/${mac}` })).json()
  t.same(view.findings, [{ id: finding.id, kind: finding.kind, explanation: finding.explanation }], 'GET /v1/machines/<mac> says why')
  const other = (await o.app.inject({ url: '/v1/machines/52:54:00:00:09:02' })).json()
  t.notOk('findings' in other, 'a machine no finding names has none')
  const list = (await o.app.inject({ url: '/v1/machines' })).json()
  t.same(list.machines.find((m: { mac: string }) => m.mac === mac).findings.map((f: { id: string }) => f.id), [finding.id], 'the list too')
})

t.test('loader (issue 19): written through the API and shown on groups and profiles', async (t) => {
  const o = await operatorApp(t, { token: TOKEN })
  const put = await o.app.inject({ method: 'PUT', url: '/v1/groups/sb', headers: AUTH, payload: { id: 'sb', profile: 'live', loader: 'shim-grub', selector: { serial: 'SB1' } } })
  t.equal(put.statusCode, 200, put.body)
  t.equal((await o.app.inject({ url: '/v1/groups/sb' })).json().loader, 'shim-grub')
  t.notOk('loader' in (await o.app.inject({ url: '/v1/groups/rack1' })).json(), 'absent when not set')
  const bad = await o.app.inject({ method: 'PUT', url: '/v1/groups/sb2', headers: AUTH, payload: { id: 'sb2', profile: 'live', loader: 'grub' } })
  t.equal(bad.statusCode, 400, 'only ipxe or shim-grub')
})

t.test('OpenAPI document lists every route with its schemas and access', async (t) => {
  const o = await operatorApp(t, { token: TOKEN })
  const doc = (await o.app.inject({ url: '/v1/openapi.json' })).json()
  t.equal(doc.openapi, '3.1.0')
  t.same(Object.keys(doc.paths).sort(), [
    '/v1/appliances',
    '/v1/events',
    '/v1/findings',
    '/v1/fleet/findings',
    '/v1/fleet/machines',
    '/v1/generic/{name}',
    '/v1/groups',
    '/v1/groups/{id}',
    '/v1/ignition/{name}',
    '/v1/leases',
    '/v1/machines',
    '/v1/machines/{mac}',
    '/v1/machines/{mac}/assign',
    '/v1/machines/{mac}/installed',
    '/v1/machines/{mac}/rearm',
    '/v1/machines/{mac}/timeline',
    '/v1/openapi.json',
    '/v1/profiles',
    '/v1/profiles/{id}',
  ])
  t.same(Object.keys(doc.paths['/v1/machines/{mac}']).sort(), ['delete', 'get', 'patch'])
  const fleetFinding = doc.paths['/v1/fleet/findings'].get.responses['200'].content['application/json'].schema.properties.findings.items
  t.same([...fleetFinding.required].sort(), ['appliance', 'appliance_state', 'evidence', 'explanation', 'id', 'kind', 'macs', 'since', 'site'], 'a fleet finding: the finding, who raised it, and its state')
  t.same(doc.paths['/v1/groups/{id}'].put.security, [{ bearer: [] }])
  t.same(doc.paths['/v1/machines/{mac}'].get.parameters[0].name, 'mac')
  t.ok(doc.paths['/v1/groups/{id}'].put.requestBody.content['application/json'].schema.properties.selector)
  t.ok(doc.paths['/v1/machines'].get.responses['200'].content['application/json'].schema.properties.machines)
  t.equal(doc.paths['/v1/machines/{mac}/installed'].post.security, undefined)
  const fleet = doc.paths['/v1/fleet/machines'].get
  t.same(fleet.parameters.map((p: { name: string; in: string }) => `${p.in} ${p.name}`), ['query limit', 'query after'], 'the fleet list pages: limit and after')
  t.ok(fleet.responses['200'].content['application/json'].schema.properties.next, 'and answers next')
  t.ok(fleet.responses['400'], 'a limit over 1,000 is a 400')
  t.same(Object.keys(doc.paths['/v1/ignition/{name}']).sort(), ['delete', 'get', 'put'])
})

t.test('SSE: a machine change arrives as an event', async (t) => {
  const o = await operatorApp(t, { token: TOKEN })
  await o.app.listen({ host: '127.0.0.1', port: 0 })
  const port = (o.app.server.address() as { port: number }).port
  const ac = new AbortController()
  const res = await fetch(`http://127.0.0.1:${port}/v1/events`, { signal: ac.signal })
  t.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8')
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader()
  o.feed(bootEvents(M1, '10.213.9.11', 2, Date.now()))
  let text = ''
  while (!text.includes('event: machine')) text += (await reader.read()).value ?? ''
  while (!text.endsWith('\n\n')) text += (await reader.read()).value ?? ''
  const data = JSON.parse(/data: (.*)\n/.exec(text.slice(text.indexOf('event: machine')))![1]!)
  t.equal(data.mac, M1)
  t.equal(data.stage, 'dhcp')
  ac.abort()
})

t.test('/metrics: Prometheus text from the app registry', async (t) => {
  const o = await operatorApp(t, { token: TOKEN })
  o.feed(bootEvents(M1, '10.213.9.11', 9, Date.now() - 30_000))
  o.feed(bootEvents(M2, '10.213.9.12', 8, Date.now() - 900_000))
  const r = await o.app.inject({ url: '/metrics' })
  t.match(r.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  t.match(r.body, /pxebox_dhcp_requests_total\{decision="offer",arch="x86_64",client_class="PXEClient"\} 2/)
  t.match(r.body, /pxebox_tftp_transfers_total\{outcome="ok"\} 2/)
  t.match(r.body, /pxebox_tftp_bytes_total 2031616/)
  t.match(r.body, /pxebox_http_boot_requests_total\{step="kernel",status="200"\} 2/)
  t.match(r.body, /pxebox_machines\{status="stuck"\} 1/)
  t.match(r.body, /pxebox_machines\{status="booting"\} 1/)
  t.match(r.body, /nodejs_eventloop_lag_p99_seconds/)
  t.notMatch(r.body, /pxebox_findings\{/, 'no findings source, no findings series')
})
