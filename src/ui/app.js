// pxebox dashboard: machines (failed and stuck first) with their boot progress, findings and leases; on a shared
// (etcd) store also the fleet: every appliance (up, or gone when its heartbeat stopped) and every site's machines
// and findings.
// Plain JS, no build. Data from /v1; live updates from /v1/events. The API token (for writes, and for reads when
// open_reads is off) is asked once and kept in sessionStorage: gone when the tab closes, never in a URL.
'use strict'

const STAGES = ['dhcp', 'tftp', 'script', 'kernel', 'initrd', 'ignition', 'installed']
const STAGE_LABEL = { dhcp: 'DHCP', tftp: 'TFTP', script: 'Script', kernel: 'Kernel', initrd: 'Initrd', ignition: 'Ignition', installed: 'Installed' }
const STATUS_ORDER = ['failed', 'stuck', 'discovered', 'booting', 'ignored', 'local-boot', 'done']
const STATUS_COLOR = { failed: 'var(--fail)', stuck: 'var(--stuck)', discovered: 'var(--new)', booting: 'var(--run)', done: 'var(--ok)', 'local-boot': 'var(--ok)', ignored: 'var(--dim)' }

const machines = new Map()
let stuckAfter = 300
/** Group ids offered to discovered machines (from /v1/groups; `<id>.assigned` groups are pxebox's own). */
let groupIds = []
/** The group picked in each discovered machine's row, kept across re-renders (live updates redraw the list). */
const chosen = new Map()
/**
 * The assignment's outcome shown in each row, kept across re-renders too: the row stays `discovered` until the
 * machine's next poll, and every live update (its report, the group list reloaded after the assignment) redraws it.
 */
const assignNote = new Map()
/**
 * True on a shared (etcd) store, from /v1/appliances: then each machine row says its site and appliance. Alone on
 * the embedded store every record carries this appliance's own name and site, which would only repeat on every row.
 */
let fleetShown = false
/** Resolves the promise of whoever waits for the token form. */
let tokenGiven

function el(tag, attrs, ...children) {
  const e = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue
    if (k === 'class') e.className = v
    else e.setAttribute(k, v === true ? '' : String(v))
  }
  for (const c of children.flat()) if (c !== undefined && c !== null && c !== false) e.append(c instanceof Node ? c : String(c))
  return e
}

function token() { return sessionStorage.getItem('pxebox-token') || '' }
function headers() { return token() ? { authorization: 'Bearer ' + token() } : {} }

/** Show the token form; resolves once a token is entered. */
function askToken(why) {
  document.getElementById('token-why').textContent = why
  document.getElementById('token-form').hidden = false
  document.getElementById('token').focus()
  return new Promise((resolve) => { tokenGiven = resolve })
}

// POST with the token; without one (or refused), ask for it and go on once it is given.
async function write(path, body) {
  if (!token()) await askToken('API token (needed for changes):')
  const res = await fetch(path, { method: 'POST', headers: { ...headers(), 'content-type': 'application/json' }, body: JSON.stringify(body) })
  if (res.status === 401 || res.status === 403) {
    sessionStorage.removeItem('pxebox-token')
    await askToken('That token was refused; API token:')
    return write(path, body)
  }
  const answer = await res.json().catch(() => ({}))
  if (!res.ok) throw new Error(answer.error || path + ': ' + res.status)
  return answer
}

async function api(path) {
  const res = await fetch(path, { headers: headers() })
  if (res.status === 401 || res.status === 403) {
    askToken('API token (this pxebox needs one to read):').then(refresh)
    throw new Error('token needed')
  }
  if (!res.ok) throw new Error(path + ': ' + res.status)
  return res.json()
}

function ago(iso) {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000))
  if (s < 90) return s + ' s ago'
  const m = Math.round(s / 60)
  return m < 90 ? m + ' min ago' : Math.floor(m / 60) + ' h ' + (m % 60) + ' min ago'
}

function stepClass(v, stage, i) {
  const reached = STAGES.indexOf(v.stage)
  const final = STAGES.indexOf(v.final_stage)
  const okStages = new Set(v.timeline.filter((e) => e.stage && e.outcome === 'ok').map((e) => e.stage))
  const staged = v.timeline.filter((e) => e.stage)
  const last = staged[staged.length - 1]
  if (v.status === 'failed' && last && last.stage === stage) return 'failed current'
  // "current" marks where the machine is now: its failed step, the step it waits for, or its last one when done.
  const finished = v.status === 'done' || v.status === 'local-boot'
  if (okStages.has(stage)) return 'reached' + (finished && i === reached ? ' current' : '')
  if (i < reached) return 'skipped'
  if (i > final && stage !== 'installed') return 'skipped'
  if (i === reached + 1 && v.status === 'stuck') return 'stuck current'
  if (i === reached + 1 && v.status === 'booting') return 'waiting current'
  if (i > final) return 'skipped'
  return ''
}

function stepTitle(v, stage) {
  const hits = v.timeline.filter((e) => e.stage === stage)
  if (!hits.length) return STAGE_LABEL[stage] + ': not yet'
  const e = hits[hits.length - 1]
  return STAGE_LABEL[stage] + ': ' + e.outcome + ', ' + e.what + ', ' + ago(e.time)
}

function inventoryLine(inv) {
  if (!inv) return undefined
  const nics = inv.nics.map((n) => n.mac + (n.chip ? ' (' + n.chip + ')' : '')).join(', ')
  return [[inv.manufacturer, inv.product].filter(Boolean).join(' '), inv.serial && 'serial ' + inv.serial, inv.asset && 'asset ' + inv.asset,
    inv.platform, inv.buildarch, inv.memsizeMb && inv.memsizeMb + ' MiB', nics && 'NIC ' + nics].filter(Boolean).join(' · ')
}

// A discovered machine's row: pick a group, Assign. pxebox adds its MAC to a group of that profile (the overlay).
function assignForm(v) {
  const select = el('select', { class: 'assign-group', 'aria-label': 'group for ' + v.mac },
    el('option', { value: '' }, 'choose a group…'), groupIds.map((id) => el('option', { value: id }, id)))
  select.value = chosen.get(v.mac) || ''
  select.addEventListener('change', () => chosen.set(v.mac, select.value))
  const status = el('span', { class: 'assign-status', 'aria-live': 'polite' }, assignNote.get(v.mac) || '')
  const note = (text) => { assignNote.set(v.mac, text); status.textContent = text }
  const form = el('form', { class: 'assign' }, select, el('button', { type: 'submit' }, 'Assign'), status)
  form.addEventListener('submit', (ev) => {
    ev.preventDefault()
    const group = chosen.get(v.mac)
    if (!group) { note('choose a group first'); return }
    note('assigning…')
    write('/v1/machines/' + v.mac + '/assign', { group })
      .then(() => {
        note('assigned to ' + group + '; it boots on its next poll')
        loadGroups().catch((e) => console.warn(e))
      })
      .catch((e) => note(e.message))
  })
  return form
}

function machineItem(v) {
  const who = [v.hostname, v.serial && 'serial ' + v.serial, v.nic_vendor, v.arch].filter(Boolean).join(' · ')
  const fleetWhere = fleetShown ? [v.site && 'site ' + v.site, v.appliance && 'appliance ' + v.appliance] : []
  const where = [...fleetWhere, v.group && 'group ' + v.group, v.profile && 'profile ' + v.profile, v.ips[0]].filter(Boolean).join(' · ')
  const labels = Object.entries(v.labels).map(([k, val]) => k + '=' + val).join(' ')
  const badges = []
  if (v.reinstalls > 0) badges.push(el('span', { class: 'badge', title: 'the installer ran again after an installed callback' }, 'reinstalled ×' + v.reinstalls))
  if (v.boots_local) badges.push(el('span', { class: 'badge ok', title: 'boot_once: /ipxe boots the local disk until re-armed' }, 'installed: local boot'))
  const steps = el('ol', { class: 'steps', 'aria-label': 'boot progress' },
    STAGES.map((s, i) => el('li', { class: 'step ' + stepClass(v, s, i), title: stepTitle(v, s), 'data-stage': s }, STAGE_LABEL[s])))
  const timeline = el('details', {},
    el('summary', {}, 'timeline (boot ' + v.boots + ', ' + v.timeline.length + ' events)'),
    el('ol', {}, v.timeline.map((e) => el('li', { class: e.outcome === 'ok' ? '' : 'bad' },
      new Date(e.time).toLocaleTimeString() + '  ' + e.source + ' ' + e.step + ': ' + e.what + (e.outcome === 'ok' ? '' : ' (' + e.outcome + ')')))))
  const log = v.log && v.log.length > 0 && el('details', { class: 'log' },
    el('summary', {}, 'log (' + v.log.length + ' lines' + (v.log_dropped ? ', ' + v.log_dropped + ' older dropped' : '') + ')'),
    el('ol', {}, v.log.map((l) => el('li', { class: l.severity <= 3 ? 'bad' : '' },
      new Date(l.time).toLocaleTimeString() + '  ' + (l.app ? l.app + ': ' : '') + l.text))))
  return el('li', { class: 'machine ' + v.status, 'data-mac': v.mac, 'data-status': v.status },
    el('div', { class: 'head' },
      el('span', { class: 'status' }, v.status),
      el('span', { class: 'mac' }, v.mac),
      who && el('span', { class: 'who' }, who),
      badges),
    el('div', { class: 'summary' }, v.summary),
    v.inventory && el('div', { class: 'inventory' }, inventoryLine(v.inventory)),
    v.status === 'discovered' && assignForm(v),
    steps,
    el('div', { class: 'meta' }, [where, labels, 'last seen ' + ago(v.last_seen)].filter(Boolean).join(' · ')),
    timeline,
    log)
}

function sorted() {
  return [...machines.values()].sort((a, b) =>
    STATUS_ORDER.indexOf(a.status) - STATUS_ORDER.indexOf(b.status) ||
    b.seconds_since_progress - a.seconds_since_progress || (a.mac < b.mac ? -1 : 1))
}

function render() {
  const list = document.getElementById('machines')
  const open = new Set([...list.querySelectorAll('details:not(.log)[open]')].map((d) => d.closest('.machine').dataset.mac))
  const openLogs = new Set([...list.querySelectorAll('details.log[open]')].map((d) => d.closest('.machine').dataset.mac))
  // A live update must not close the group list the operator has open in a discovered machine's row.
  if (document.activeElement && document.activeElement.classList.contains('assign-group')) return
  const items = sorted().map(machineItem)
  for (const item of items) if (open.has(item.dataset.mac)) item.querySelector('details').open = true
  for (const item of items) if (openLogs.has(item.dataset.mac) && item.querySelector('details.log')) item.querySelector('details.log').open = true
  list.replaceChildren(...items)
  document.getElementById('no-machines').hidden = machines.size > 0
  const counts = {}
  for (const v of machines.values()) counts[v.status] = (counts[v.status] || 0) + 1
  document.getElementById('counts').replaceChildren(...STATUS_ORDER.filter((s) => counts[s]).map((s) =>
    el('span', { class: 'pill', style: 'background:' + STATUS_COLOR[s], 'data-status': s }, counts[s] + ' ' + s)))
}

// The list comes in pages (at most 1,000 machines each); follow next_offset to the end.
async function loadMachines() {
  const all = []
  let offset = 0
  for (;;) {
    const data = await api('/v1/machines?limit=1000&offset=' + offset)
    stuckAfter = data.stuck_after_seconds
    all.push(...data.machines)
    if (data.next_offset === undefined) break
    offset = data.next_offset
  }
  machines.clear()
  for (const v of all) machines.set(v.mac, v)
  render()
}

async function loadGroups() {
  const data = await api('/v1/groups')
  groupIds = data.groups.map((g) => g.id).filter((id) => !id.endsWith('.assigned')).sort()
  render()
}

async function loadTracking() {
  const [leases, findings] = await Promise.all([api('/v1/leases'), api('/v1/findings')])
  const fl = document.getElementById('findings')
  fl.replaceChildren(...(findings.available
    ? findings.findings.length ? findings.findings.map((f) => el('li', {}, el('strong', {}, f.kind), ' ' + f.explanation + ' (since ' + ago(f.since) + ')'))
      : [el('li', { class: 'empty' }, 'None.')]
    : [el('li', { class: 'empty' }, 'Address tracking is not running.')]))
  const tb = document.querySelector('#leases tbody')
  tb.replaceChildren(...(leases.available
    ? leases.leases.map((l) => el('tr', {}, el('td', { class: 'mac' }, l.mac), el('td', {}, l.ip), el('td', {}, l.state), el('td', {}, ago(l.lastSeen))))
    : [el('tr', {}, el('td', { colspan: 4, class: 'empty' }, 'Address tracking is not running.'))]))
}

function applianceRow(a) {
  const title = a.state === 'gone' ? 'no heartbeat since ' + a.heartbeat + ' (its etcd lease expired)' : 'heartbeat ' + a.heartbeat
  return el('tr', { class: 'appliance ' + a.state, 'data-name': a.name, 'data-state': a.state },
    el('td', {}, a.name), el('td', {}, a.site), el('td', { class: 'state', title }, a.state),
    el('td', {}, a.interface + ' ' + a.address), el('td', {}, a.version), el('td', {}, ago(a.heartbeat)))
}

function fleetFindingRow(f) {
  // A gone appliance's findings are its last ones: nothing there re-derives them until it starts again.
  const who = f.appliance_state === 'up' ? f.appliance : f.appliance + ' (' + f.appliance_state + ')'
  return el('tr', { class: 'fleet-finding ' + f.appliance_state, 'data-id': f.id, 'data-site': f.site, 'data-appliance': f.appliance, 'data-appliance-state': f.appliance_state },
    el('td', {}, f.site), el('td', { class: 'appliance-name' }, who), el('td', {}, el('strong', {}, f.kind)), el('td', {}, f.explanation), el('td', {}, ago(f.since)))
}

/** How many fleet findings the table shows, for its heading while the list cannot be read again. */
let fleetFindingsShown = 0

// Every appliance's findings, from the same copy of the shared store as the machines: during an outage they are as
// last seen (current: false), or the request fails (503) and the last list stays; the heading says so.
async function loadFleetFindings() {
  const heading = document.getElementById('fleet-findings-h')
  let found
  try {
    found = await api('/v1/fleet/findings')
  } catch (e) {
    heading.textContent = 'Findings by site: ' + fleetFindingsShown + ', as last seen (' + e.message + ')'
    return
  }
  fleetFindingsShown = found.findings.length
  heading.textContent = 'Findings by site: ' + found.findings.length + (found.current === false ? ', as last seen (etcd unreachable)' : '')
  document.querySelector('#fleet-findings tbody').replaceChildren(...(found.findings.length
    ? found.findings.map(fleetFindingRow)
    : [el('tr', {}, el('td', { colspan: 5, class: 'empty' }, 'No appliance reports a finding.'))]))
}

function fleetMachineRow(m) {
  return el('tr', { class: 'fleet-machine', 'data-mac': m.mac, 'data-site': m.site || '', 'data-appliance': m.appliance || '' },
    el('td', { class: 'mac' }, m.mac), el('td', { class: 'appliance-name' }, m.appliance || '?'), el('td', {}, m.hostname || ''),
    el('td', {}, [m.group, m.profile].filter(Boolean).join(' / ')), el('td', {}, m.ips.join(', ')), el('td', {}, ago(m.last_seen)))
}

/**
 * The fleet's machines as shown: the API's pages (500 records each, in MAC order) read so far, and `next` while more
 * follow in the shared store ("Show more" reads the next page). `shown` counts "Show more" clicks, so a refresh that
 * began before one does not put back the shorter list it read.
 */
const fleetList = { machines: [], next: undefined, shown: 0 }

// The fleet section shows only on a shared store (/v1/appliances says available): one table per site, its
// machines with the appliance that last saw each.
async function loadFleet() {
  const appliances = await api('/v1/appliances')
  const section = document.getElementById('fleet')
  section.hidden = !appliances.available
  if (fleetShown !== appliances.available) {
    fleetShown = appliances.available
    render()
  }
  section.dataset.available = String(appliances.available)
  if (!appliances.available) return
  const gone = appliances.appliances.filter((a) => a.state === 'gone').length
  document.getElementById('appliances-h').textContent = 'Appliances: ' + (appliances.appliances.length - gone) + ' up' + (gone ? ', ' + gone + ' gone' : '')
  document.querySelector('#appliances tbody').replaceChildren(...(appliances.appliances.length
    ? appliances.appliances.map(applianceRow)
    : [el('tr', {}, el('td', { colspan: 6, class: 'empty' }, 'None registered.'))]))
  // The machine list comes from the appliance's copy of the shared store: while etcd does not answer it is the copy
  // as last seen (current: false), or the request fails (503); either way the appliances above still show (the
  // registry is held in memory) and the list is marked as not current.
  const markStale = (why) => {
    const stale = document.getElementById('fleet-stale') || el('p', { id: 'fleet-stale', class: 'bad' })
    stale.textContent = 'The shared store does not answer (' + why + '): the machines below are as last seen.'
    document.getElementById('fleet-sites').before(stale)
  }
  // As many machines as were shown (the first page and every "Show more"), read again.
  const shown = fleetList.shown
  let read
  try {
    read = await api('/v1/fleet/machines')
    while (read.next !== undefined && read.machines.length < fleetList.machines.length) {
      const page = await api('/v1/fleet/machines?after=' + encodeURIComponent(read.next))
      read = { ...page, machines: read.machines.concat(page.machines), current: read.current && page.current }
    }
  } catch (e) {
    markStale(e.message)
    return
  }
  if (read.current === false) markStale('etcd unreachable')
  else document.getElementById('fleet-stale')?.remove()
  if (shown !== fleetList.shown) return
  fleetList.machines = read.machines
  fleetList.next = read.next
  renderFleetMachines()
}

async function showMoreFleet() {
  if (fleetList.next === undefined) return
  const page = await api('/v1/fleet/machines?after=' + encodeURIComponent(fleetList.next))
  fleetList.shown++
  fleetList.machines = fleetList.machines.concat(page.machines)
  fleetList.next = page.next
  renderFleetMachines()
}

function renderFleetMachines() {
  const bySite = new Map()
  for (const m of fleetList.machines) {
    const site = m.site || '(no site)'
    if (!bySite.has(site)) bySite.set(site, [])
    bySite.get(site).push(m)
  }
  const sites = [...bySite.keys()].sort()
  document.getElementById('fleet-sites').replaceChildren(...(sites.length ? sites.map((site) => el('div', { class: 'site', 'data-site': site },
    el('h3', {}, 'Site ' + site + ': ' + bySite.get(site).length + ' machine' + (bySite.get(site).length === 1 ? '' : 's') + (fleetList.next === undefined ? '' : ' so far')),
    el('div', { class: 'scroll' }, el('table', {},
      el('thead', {}, el('tr', {}, ['MAC', 'Appliance', 'Hostname', 'Group / profile', 'Addresses', 'Last seen'].map((h) => el('th', {}, h)))),
      el('tbody', {}, bySite.get(site).map(fleetMachineRow))))))
    : [el('p', { class: 'empty' }, 'No machine has booted at any site yet.')]))
  const more = document.getElementById('fleet-more')
  more.hidden = fleetList.next === undefined
  more.querySelector('.hint').textContent = fleetList.machines.length + ' machines shown, in MAC order; more are in the shared store.'
}

document.querySelector('#fleet-more button').addEventListener('click', () => {
  showMoreFleet().catch((e) => console.warn(e))
})

// Server-sent events read with fetch so the token can go in a header (EventSource cannot send one).
async function follow() {
  const live = document.getElementById('live')
  let connected = false
  for (;;) {
    try {
      const res = await fetch('/v1/events', { headers: headers() })
      if (!res.ok || !res.body) throw new Error('events: ' + res.status)
      live.className = 'live on'
      live.textContent = 'live'
      // After a reconnect (pxebox closes streams that fall behind) the list is reloaded: that is the resync.
      if (connected) await loadMachines()
      connected = true
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
      let buf = ''
      for (;;) {
        const { value, done } = await reader.read()
        if (done) break
        buf += value
        let cut
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, cut)
          buf = buf.slice(cut + 2)
          let type = 'message'
          let data = ''
          for (const line of block.split('\n')) {
            if (line.startsWith('event: ')) type = line.slice(7)
            else if (line.startsWith('data: ')) data += line.slice(6)
          }
          if (type === 'machine') machines.set(JSON.parse(data).mac, JSON.parse(data))
          else if (type === 'forget') machines.delete(JSON.parse(data))
          else if (type === 'resync') { await loadMachines(); continue }
          else continue
          render()
        }
      }
    } catch (err) {
      console.warn(err)
    }
    live.className = 'live off'
    live.textContent = 'reconnecting'
    await new Promise((r) => setTimeout(r, 3000))
  }
}

document.getElementById('token-form').addEventListener('submit', (ev) => {
  ev.preventDefault()
  sessionStorage.setItem('pxebox-token', document.getElementById('token').value.trim())
  document.getElementById('token').value = ''
  document.getElementById('token-form').hidden = true
  const resolve = tokenGiven
  tokenGiven = undefined
  if (resolve) resolve()
  else refresh()
})

function refresh() {
  loadMachines().catch((e) => console.warn(e))
  loadGroups().catch((e) => console.warn(e))
  loadTracking().catch((e) => console.warn(e))
  loadFleet()
    .then(() => fleetShown && loadFleetFindings())
    .catch((e) => console.warn(e))
}

refresh()
follow()
// Stuck is a matter of time passing: re-read the list (statuses, "ago") every 10 s.
setInterval(refresh, 10_000)
