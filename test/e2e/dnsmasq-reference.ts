/**
 * The reference appliance: dnsmasq as proxyDHCP + TFTP (Debian's iPXE binaries) and a minimal HTTP server for the
 * iPXE script, kernel, initrd and Ignition. It proves the harness with a server everyone trusts, and gives the
 * figures pxebox must not be slower than.
 *
 * Flow for UEFI PXE: OVMF DISCOVER -> dnsmasq proxy offer -> REQUEST to 4011 -> snponly.efi over TFTP -> iPXE (user
 * class "iPXE") asks again -> dnsmasq names http://<us>:8080/boot.ipxe -> kernel + initrd over HTTP -> Linux fetches
 * /ignition?mac=. BIOS: QEMU's iPXE ROM is already iPXE, so it gets boot.ipxe straight away.
 * Limitation (measured): dnsmasq 2.90 in proxy mode does not answer UEFI HTTP boot (option 60 HTTPClient), so there
 * is no `uefi-http` reference figure.
 */
import { copyFileSync, mkdirSync, writeFileSync, realpathSync } from 'node:fs'
import { join } from 'node:path'
import { waitForText, type ManagedProcess } from './lib/proc.js'
import { repoRoot, type ApplianceBackend, type ApplianceContext } from './harness.js'

/** Debian package ipxe: the first-stage binaries served over TFTP. */
export const ipxeDir = '/usr/lib/ipxe'

/** The iPXE script every machine gets: kernel + initrd over HTTP, `initrd=` because the EFI stub needs it. */
export function referenceBootScript(publicUrl: string): string {
  return [
    '#!ipxe',
    `kernel ${publicUrl}/vmlinuz initrd=initrd.img console=ttyS0 quiet pxebox.url=${publicUrl}`,
    `initrd ${publicUrl}/initrd.img`,
    'boot',
    '',
  ].join('\n')
}

/** dnsmasq's argv for proxyDHCP + TFTP on the lab bridge. */
export function referenceDnsmasqArgs(ctx: ApplianceContext, tftpRoot: string, dir: string): string[] {
  return [
    '--keep-in-foreground', '--conf-file=/dev/null', '--port=0', '--user=root', '--log-facility=-', '--log-dhcp',
    `--pid-file=${join(dir, 'dnsmasq.pid')}`, `--dhcp-leasefile=${join(dir, 'dnsmasq.leases')}`,
    `--interface=${ctx.iface}`, '--bind-interfaces',
    // proxy: answer PXE clients only, never hand out addresses (the site DHCP server does that).
    `--dhcp-range=${ctx.network},proxy,${ctx.netmask}`,
    // iPXE identifies itself with user class "iPXE" (option 77): it gets the HTTP script instead of a PXE menu,
    // which would only chainload iPXE again.
    '--dhcp-userclass=set:ipxe,iPXE',
    `--dhcp-boot=tag:ipxe,${ctx.publicUrl}/boot.ipxe`,
    // Firmware PXE clients (not iPXE): a one-entry menu that boots at once. Names with a suffix get no ".0" added.
    '--pxe-prompt=tag:!ipxe,PXE,0',
    '--pxe-service=tag:!ipxe,x86PC,pxebox reference,undionly.kpxe',
    '--pxe-service=tag:!ipxe,x86-64_EFI,pxebox reference,snponly.efi',
    '--pxe-service=tag:!ipxe,BC_EFI,pxebox reference,snponly.efi',
    // QEMU's iPXE option ROM on BIOS still sees dnsmasq's PXE vendor options (43) and does a boot-server REQUEST to
    // 4011; that ACK must carry a boot item (43.71), which dnsmasq only sends for a matching menu entry: one whose
    // "basename" is the script URL (as in the fixture capture, frames 19-25). Without it iPXE retries forever.
    `--pxe-service=tag:ipxe,x86PC,pxebox reference,${ctx.publicUrl}/boot.ipxe`,
    '--enable-tftp', `--tftp-root=${tftpRoot}`,
  ]
}

/** The dnsmasq reference backend; its files live under `<lab dir>/dnsmasq-ref/`. */
export function dnsmasqReference(): ApplianceBackend {
  const procs: ManagedProcess[] = []
  return {
    name: 'dnsmasq',
    async start(ctx) {
      const dir = join(ctx.dir, 'dnsmasq-ref')
      const tftpRoot = join(dir, 'tftp')
      const httpRoot = join(dir, 'http')
      mkdirSync(tftpRoot, { recursive: true })
      mkdirSync(join(httpRoot, 'ignition'), { recursive: true })
      // Copies, not symlinks: ipxe.efi is itself a symlink to /boot, and the roots must be self-contained.
      for (const f of ['undionly.kpxe', 'snponly.efi', 'ipxe.efi']) copyFileSync(realpathSync(join(ipxeDir, f)), join(tftpRoot, f))
      copyFileSync(ctx.bootTarget.vmlinuz, join(httpRoot, 'vmlinuz'))
      copyFileSync(ctx.bootTarget.initrd, join(httpRoot, 'initrd.img'))
      writeFileSync(join(httpRoot, 'boot.ipxe'), referenceBootScript(ctx.publicUrl))
      for (const m of ctx.machines) writeFileSync(join(httpRoot, 'ignition', `${m.mac}.json`), JSON.stringify(m.ignition))

      // From the source tree: tsc does not copy .mjs files into dist/.
      const server = join(repoRoot(), 'test', 'e2e', 'lib', 'reference-http-server.mjs')
      const http = ctx.spawn('ref-http', process.execPath, [server, ctx.address, String(ctx.httpPort), httpRoot])
      procs.push(http)
      const dnsmasq = ctx.spawn('ref-dnsmasq', 'dnsmasq', referenceDnsmasqArgs(ctx, tftpRoot, dir))
      procs.push(dnsmasq)
      await waitForText(http.logPath, /listening on/, 10_000, http)
      await waitForText(dnsmasq.logPath, /DHCP, proxy on subnet/, 10_000, dnsmasq)
      await waitForText(dnsmasq.logPath, /TFTP root is/, 10_000, dnsmasq)
    },
    async stop() {
      await Promise.all(procs.map((p) => p.stop(2000)))
    },
    logs() {
      return procs.map((p) => p.logPath)
    },
  }
}
