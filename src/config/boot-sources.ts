/** The boot model's inputs as named in a loaded config (shared by the daemon and `pxebox validate`). */
import type { Config } from './schema.js'
import type { BootStateOptions } from '../catalog/state.js'

/** Profiles, groups and the folders their files come from. */
export function bootSourcesOf(config: Config): BootStateOptions {
  return {
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
