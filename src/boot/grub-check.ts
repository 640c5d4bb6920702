/**
 * Load-time trial render of GRUB configs (issue 19): a `loader: shim-grub` group whose profile GRUB cannot boot is a
 * load error naming the group, not a machine that stops at a GRUB prompt. The signed GRUB has no HTTP, so a kernel or
 * initrd anywhere but pxebox's `/assets/` cannot work; an iPXE variable pxebox cannot fill in would leave a hole in
 * the command line.
 */
import { effectiveLoader, type Group, type Profile } from '../catalog/model.js'
import { renderGrubBootConfig, type GrubMachine } from './grub-config.js'

/**
 * A machine with every value pxebox can fill in set, so the trial render reaches every variable the profile uses.
 * The values are never served: only whether rendering succeeds matters.
 */
const TRIAL_MACHINE: GrubMachine = {
  mac: '52:54:00:00:00:01',
  uuid: '00000000-0000-0000-0000-000000000001',
  serial: 'trial',
  hostname: 'trial',
  domain: 'trial',
  ip: '192.0.2.1',
}

/**
 * The catalog's `checkGroup` for shim-grub groups: the errors of rendering the group's profile as a GRUB config
 * against `publicUrl` (absolute asset URLs on pxebox itself count as pxebox's assets). Groups with the iPXE loader
 * and profiles without a kernel pass (the latter get GRUB's "no boot" message at run time, as `/ipxe` answers 404).
 */
export function grubGroupCheck(publicUrl: string): (group: Group, profile: Profile) => readonly string[] {
  return (group, profile) => {
    if (effectiveLoader(group, profile) !== 'shim-grub' || profile.boot === undefined) return []
    const rendered = renderGrubBootConfig(profile.boot, TRIAL_MACHINE, { publicUrl }, `trial of profile "${profile.id}"`)
    return rendered.ok ? [] : rendered.errors.map((e) => `loader shim-grub: profile "${profile.id}": ${e}`)
  }
}
