/**
 * The Secure Boot chain's signed binaries from Debian's archive, for VM tests (issue 19): shim signed by Microsoft
 * (package shim-signed) and network GRUB signed by Debian (package grub-efi-amd64-signed). Like
 * scripts/build-boot-target.sh, nothing is installed on the host: `apt-get download` + `dpkg-deb -x` into a cache
 * directory (git-ignored). The kernel of the boot target (Debian's linux-image-*-cloud-amd64) is itself the
 * Debian-signed image, so shim accepts it as it is.
 *
 * Until firmware/fetch.sh carries these (the wiring step), this is how tests get them.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync } from 'node:fs'
import { join } from 'node:path'

/** Where the unpacked binaries are. */
export interface SignedChain {
  /** shimx64.efi.signed: Microsoft-signed, trusts Debian's CA; loads `grubx64.efi` from its own directory. */
  shim: string
  /** grubnetx64.efi.signed: GRUB with the network modules built in, prefix `/grub`, signed by Debian. */
  grub: string
  /** grubx64.efi.signed: Debian's signed GRUB for disks (prefix /EFI/debian, falls back to grub.cfg next to itself). */
  diskGrub: string
  /** The packages and versions they came from, for reports. */
  packages: string[]
}

/** The two packages and the file each provides. */
const PACKAGES: Array<[pkg: string, file: string]> = [
  ['shim-signed', 'usr/lib/shim/shimx64.efi.signed'],
  ['grub-efi-amd64-signed', 'usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed'],
]

/** Download and unpack (once) the signed shim and GRUB into `dir`; throws with apt's output if that fails. */
export function ensureSignedChain(dir: string): SignedChain {
  const debs = join(dir, 'debs')
  const root = join(dir, 'root')
  mkdirSync(debs, { recursive: true })
  const packages: string[] = []
  const paths: string[] = []
  for (const [pkg, file] of PACKAGES) {
    let deb = readdirSync(debs).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'))
    if (deb === undefined) {
      // APT::Sandbox::User=root: apt's _apt user cannot write into a root-owned cache dir (it would only warn).
      execFileSync('apt-get', ['download', '-q', '-o', 'APT::Sandbox::User=root', pkg], { cwd: debs, stdio: ['ignore', 'pipe', 'pipe'] })
      deb = readdirSync(debs).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'))
      if (deb === undefined) throw new Error(`apt-get download ${pkg} left no .deb in ${debs}`)
    }
    const path = join(root, file)
    if (!existsSync(path)) execFileSync('dpkg-deb', ['-x', join(debs, deb), root])
    packages.push(deb.replace(/\.deb$/, ''))
    paths.push(path)
  }
  return { shim: paths[0]!, grub: paths[1]!, diskGrub: join(root, 'usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed'), packages }
}
