/** The boot model's inputs as named in a loaded config (shared by the daemon and `pxebox validate`). */
import type { Config } from './schema.js'
import type { BootStateOptions } from '../catalog/state.js'
import { grubGroupCheck } from '../boot/grub-check.js'

/**
 * Where `pxebox validate` (no interface address) assumes pxebox is when the config has no `http.public_url`: only
 * root-relative `/assets/` URLs then count as pxebox's own in the GRUB trial render.
 */
const UNKNOWN_PUBLIC_URL = 'http://pxebox.invalid'

/**
 * Profiles, groups and the folders their files come from. `publicUrl`: pxebox's HTTP base as the daemon computed it,
 * for the GRUB trial render of shim-grub groups.
 */
export function bootSourcesOf(config: Config, publicUrl?: string): BootStateOptions {
  return {
    checkGroup: grubGroupCheck(publicUrl ?? config.http.public_url ?? UNKNOWN_PUBLIC_URL),
    // The config is deeply frozen; the boot loader only reads these objects.
    profiles: config.profiles as BootStateOptions['profiles'],
    groups: config.groups as unknown as BootStateOptions['groups'],
    configName: config.file,
    ...(config.matchbox_dir !== undefined ? { matchboxDir: config.matchbox_dir } : {}),
    ...(config.ignition_dir !== undefined ? { ignitionDir: config.ignition_dir } : {}),
    ...(config.generic_dir !== undefined ? { genericDir: config.generic_dir } : {}),
    ...(config.butane_files_dir !== undefined ? { filesDir: config.butane_files_dir } : {}),
  }
}
