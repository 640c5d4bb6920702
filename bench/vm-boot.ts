/**
 * VM boot comparison: real firmware under QEMU (TCG) boots to Linux and fetches its config, against pxebox and
 * against the dnsmasq reference (proxyDHCP + TFTP + a minimal HTTP server), run interleaved so both see the same
 * machine load. Prints time to marker per path and backend, and where the time went (console milestones).
 * A comparison run, not a test: nothing here asserts a time.
 *
 * Usage (root): bench/vm-boot.sh [--backends dnsmasq,pxebox] [--kinds uefi-pxe,bios-ipxe] [--runs 3] [--capture DIR]
 *                                [--pxebox-boot-file snponly.efi]
 */
import { parseArgs } from 'node:util'
import { join } from 'node:path'
import { mkdirSync } from 'node:fs'
import { createLab, e2eUnavailable, testMachine, vmKinds, type ApplianceBackend, type BootResult, type VmKind } from '../test/e2e/harness.js'
import { dnsmasqReference } from '../test/e2e/dnsmasq-reference.js'

/** Console lines marking the stages of a network boot, in the order they happen. */
const milestones: Array<[string, RegExp]> = [
  ['fw-pxe', /Start PXE over IPv4|Start HTTP Boot over IPv4|iPXE \(http:\/\/ipxe\.org\)|iPXE \(PCI/],
  ['nbp', /NBP file downloaded|Downloading NBP file|snponly\.efi/],
  ['ipxe', /iPXE initialising devices|iPXE 1\.0/],
  ['dhcp-ok', /^net0: \d+\.\d+\.\d+\.\d+/],
  ['script', /boot\.ipxe\.\.\.|\[script\]/],
  ['kernel', /vmlinuz\.\.\. ok/],
  ['initrd', /initrd\.img\.\.\. ok/],
  ['marker', /^PXEBOX-MARKER/],
]

function stages(r: BootResult): string {
  const out: string[] = []
  for (const [name, re] of milestones) {
    const hit = r.timeline.find((e) => re.test(e.line))
    if (hit) out.push(`${name}@${(hit.ms / 1000).toFixed(1)}`)
  }
  // The booted Linux's own uptime at the marker: splits the total into firmware+iPXE and Linux time.
  const uptime = r.marker?.fields.uptime
  if (uptime !== undefined) out.push(`(linux ${uptime}s)`)
  return out.join(' ')
}

async function loadBackend(name: string, uefiBootFile: string | undefined): Promise<ApplianceBackend> {
  if (name === 'dnsmasq') return dnsmasqReference()
  if (name === 'pxebox') {
    // Loaded on demand: the dnsmasq-only comparison must run before pxebox exists.
    const { pxeboxBackend } = await import('../test/e2e/pxebox-backend.js')
    return pxeboxBackend(uefiBootFile === undefined ? {} : { extras: () => ({ boot_file: uefiBootFile }) })
  }
  throw new Error(`unknown backend ${name} (dnsmasq, pxebox)`)
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      backends: { type: 'string', default: 'dnsmasq,pxebox' },
      kinds: { type: 'string', default: 'uefi-pxe,bios-ipxe' },
      runs: { type: 'string', default: '3' },
      capture: { type: 'string' },
      // pxebox group boot_file for UEFI PXE (e.g. snponly.efi, what the dnsmasq reference serves).
      'pxebox-boot-file': { type: 'string' },
    },
  })
  const unavailable = e2eUnavailable(['node'])
  if (unavailable !== undefined) {
    console.error(`vm-boot bench: cannot run: ${unavailable}`)
    process.exitCode = 2
    return
  }
  const backends = (values.backends ?? '').split(',').filter(Boolean)
  const kinds = (values.kinds ?? '').split(',').filter(Boolean) as VmKind[]
  for (const k of kinds) if (!vmKinds.includes(k)) throw new Error(`unknown kind ${k} (${vmKinds.join(', ')})`)
  const runs = Number(values.runs)
  const results: Array<{ backend: string; kind: VmKind; ms: number | undefined; status: string }> = []

  for (let run = 1; run <= runs; run++) {
    for (const backendName of backends) {
      // A fresh lab per backend and run: no DHCP lease or ARP state carries over between the two appliances.
      const machines = kinds.map((k, i) => testMachine(k, i + 1, 41))
      // The pcap goes straight to the capture dir (outside the lab's temp dir, which destroy() removes).
      const capture = values.capture === undefined ? false : join(values.capture, `vm-boot-${backendName}-run${run}.pcap`)
      if (values.capture !== undefined) mkdirSync(values.capture, { recursive: true })
      const lab = await createLab({ id: 'bench', net: 41, capture })
      try {
        await lab.startAppliance(await loadBackend(backendName, values['pxebox-boot-file']), machines)
        for (const m of machines) {
          const r = await lab.bootVm(m, { timeoutMs: 180_000 })
          const status = r.marker?.status ?? (r.timedOut ? 'timeout' : 'no-marker')
          results.push({ backend: backendName, kind: m.kind, ms: r.msToMarker, status })
          console.log(`run ${run} ${backendName.padEnd(8)} ${m.kind.padEnd(10)} ${String(r.msToMarker ?? '-').padStart(6)} ms  ${status}  ${stages(r)}`)
          if (status !== 'ok') console.log(r.diagnostics)
        }
      } finally {
        await lab.destroy()
        if (typeof capture === 'string') console.log(`capture: ${capture}`)
      }
    }
  }

  console.log('\nmedian ms to marker (QEMU start -> Linux printed the fetched config), load average now', (await import('node:os')).loadavg().map((l) => l.toFixed(1)).join(' '))
  for (const kind of kinds) {
    const row = backends.map((b) => {
      const ok = results.filter((r) => r.backend === b && r.kind === kind && r.status === 'ok' && r.ms !== undefined).map((r) => r.ms as number).sort((x, y) => x - y)
      const median = ok.length === 0 ? '-' : String(ok[Math.floor(ok.length / 2)])
      return `${b} ${median} (${ok.length}/${runs} ok)`
    })
    console.log(`  ${kind.padEnd(10)} ${row.join('   ')}`)
  }
}

await main()
