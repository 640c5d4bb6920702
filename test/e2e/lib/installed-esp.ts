/**
 * An installed system's EFI system partition for VM tests of install once (issue 9, issue 19): what a machine's local
 * disk holds after the installer ran, so a test can see the firmware really booted that disk.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, renameSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import type { SignedChain } from './signed-chain.js'

/**
 * An installed system's EFI system partition, as a whole-disk FAT image: Debian's signed shim on the removable-media
 * path, its signed disk GRUB next to it, and a grub.cfg that prints `PXEBOX-LOCAL-DISK booted` and waits.
 */
export function installedEsp(chain: SignedChain, path: string): string {
  if (existsSync(path)) return path
  const cfg = join(dirname(path), 'esp-grub.cfg')
  writeFileSync(cfg, 'echo PXEBOX-LOCAL-DISK booted\nsleep 600\n')
  execFileSync('mkfs.fat', ['-C', `${path}.new`, String(32 * 1024)], { stdio: 'ignore' })
  const m = (args: string[]) => execFileSync(args[0]!, ['-i', `${path}.new`, ...args.slice(1)], { stdio: 'ignore' })
  m(['mmd', '::/EFI', '::/EFI/BOOT', '::/EFI/debian'])
  m(['mcopy', chain.shim, '::/EFI/BOOT/BOOTX64.EFI'])
  m(['mcopy', chain.diskGrub, '::/EFI/BOOT/grubx64.efi'])
  // Debian's disk GRUB reads $prefix/grub.cfg (/EFI/debian) and falls back to the one next to itself.
  m(['mcopy', cfg, '::/EFI/debian/grub.cfg'])
  m(['mcopy', cfg, '::/EFI/BOOT/grub.cfg'])
  renameSync(`${path}.new`, path)
  return path
}
