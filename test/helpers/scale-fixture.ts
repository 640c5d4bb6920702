/**
 * A Matchbox data directory at fleet size, as data centres run them (issue 16): one group per machine, selected by
 * MAC, with `hostname` and `ssh_key` metadata; 10 profiles; 3 Butane templates shared by the profiles, each reading
 * the group's metadata. Used by bench/scale-catalog.ts and by the catalog tests that need a large catalog.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

/** How many profiles and templates the fixture has (the numbers). */
export const SCALE_PROFILES = 10
export const SCALE_TEMPLATES = 3

/** The MAC of machine `i` (0-based): 52:54:00 then the index in three bytes, so up to 16.7 million machines. */
export function scaleMac(i: number): string {
  const b = [(i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff]
  return ['52', '54', '00', ...b.map((x) => x.toString(16).padStart(2, '0'))].join(':')
}

/** Group `i` as its Matchbox file holds it. */
export function scaleGroup(i: number, marker = ''): Record<string, unknown> {
  const id = `node${String(i).padStart(6, '0')}`
  return {
    id,
    profile: `profile${i % SCALE_PROFILES}`,
    selector: { mac: scaleMac(i) },
    metadata: { hostname: `${id}${marker}.dc1.example.com`, ssh_key: `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${String(i).padStart(40, 'x')} ops@${id}` },
  }
}

/** Butane template `t`: every group's hostname and ssh_key go into the config. */
export function scaleTemplate(t: number): string {
  return [
    'variant: fcos',
    'version: 1.5.0',
    'passwd:',
    '  users:',
    '    - name: core',
    '      ssh_authorized_keys:',
    '        - {{.ssh_key}}',
    'storage:',
    '  files:',
    '    - path: /etc/hostname',
    '      mode: 0644',
    '      contents:',
    '        inline: {{.hostname}}',
    `    - path: /etc/pxebox-template-${t}`,
    '      contents:',
    `        inline: template ${t}`,
    '',
  ].join('\n')
}

/** Write the fixture under `root` (created): groups/, profiles/, ignition/. Writes `groups` group files. */
export async function writeScaleMatchboxDir(root: string, groups: number): Promise<void> {
  for (const d of ['groups', 'profiles', 'ignition']) await mkdir(join(root, d), { recursive: true })
  for (let t = 0; t < SCALE_TEMPLATES; t++) await writeFile(join(root, 'ignition', `node-${t}.bu`), scaleTemplate(t))
  for (let p = 0; p < SCALE_PROFILES; p++) {
    const profile = {
      id: `profile${p}`,
      boot: {
        kernel: `/assets/fcos/kernel-${p}`,
        initrd: [`--name main /assets/fcos/initramfs-${p}.img`],
        args: ['initrd=main', 'coreos.live.rootfs_url=http://pxe/assets/fcos/rootfs.img', 'ignition.firstboot', 'ignition.platform.id=metal'],
      },
      ignition_id: `node-${p % SCALE_TEMPLATES}.bu`,
    }
    await writeFile(join(root, 'profiles', `profile${p}.json`), JSON.stringify(profile))
  }
  // Many files at once: one at a time takes minutes at 100,000 on a loaded disk.
  const BATCH = 256
  for (let start = 0; start < groups; start += BATCH) {
    const writes: Promise<void>[] = []
    for (let i = start; i < Math.min(groups, start + BATCH); i++) {
      const g = scaleGroup(i)
      writes.push(writeFile(join(root, 'groups', `${String(g.id)}.json`), JSON.stringify(g)))
    }
    await Promise.all(writes)
  }
}
