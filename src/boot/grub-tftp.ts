/**
 * The TFTP side of the Secure Boot chain (issue 19), as resolvers of the PXE file handler (boot/tftp-files.ts): GRUB
 * configs generated per machine (grub-files.ts), attributed to that machine, and the profiles' assets mapped
 * read-only under `assets/` (the signed GRUB loads kernel and initrds over TFTP only), confined like every served
 * folder (host/confine.ts through tftp/folder.ts).
 */
import { createTftpFolder } from '../tftp/index.js'
import { silentLogger, type Logger } from '../host/log.js'
import { grubConfigFile, isOptionalLoaderFile, type GrubFilesOptions } from './grub-files.js'
import { folderFiles, type BootFileResolver } from './tftp-files.js'

/** The TFTP folder the profiles' `/assets/` URLs map to. */
export const TFTP_ASSETS_PREFIX = 'assets/'

/** Options: the GRUB config inputs plus the assets folder. */
export interface SecureBootTftpOptions extends GrubFilesOptions {
  /** config `assets_dir`; undefined: no assets over TFTP. */
  readonly assetsDir?: string
  readonly logger?: Logger
}

/**
 * The resolvers, in order: GRUB config names, `assets/<path>` from assets_dir, and a last one that only logs shim's
 * and GRUB's optional probes at debug (their misses are normal, not an operator's problem) and lets the firmware
 * folder answer.
 */
export function secureBootResolvers(opts: SecureBootTftpOptions): BootFileResolver[] {
  const logger = opts.logger ?? silentLogger
  const configs: BootFileResolver = ({ path, peer }) => {
    const config = grubConfigFile(path, peer.address, opts)
    if (config === undefined) return undefined
    logger.info({ file: path, peer: peer.address, mac: config.mac, answer: config.answer }, 'GRUB config')
    // The local-boot config is install once's answer (as /ipxe's local-boot script is on the iPXE path): its transfer
    // is step 'local-boot', so the machine shows as booted from its local disk.
    const tags = { ...(config.mac !== undefined ? { mac: config.mac } : {}), ...(config.answer === 'local-boot' ? { step: 'local-boot' } : {}) }
    return { name: path, size: config.content.length, content: config.content, ...(Object.keys(tags).length > 0 ? { tags } : {}) }
  }
  const probes: BootFileResolver = ({ path, peer }) => {
    if (isOptionalLoaderFile(path)) logger.debug({ file: path, peer: peer.address }, 'optional shim/GRUB file probed')
    return undefined
  }
  // Resolved on every request (resolvedFiles: 0): each is a kernel or initrd, megabytes over TFTP, beside which a
  // realpath is nothing, and these resolvers have no close() to release remembered paths' directory watches.
  const assets = opts.assetsDir === undefined ? [] : [profileAssets(folderFiles(createTftpFolder({ root: opts.assetsDir, resolvedFiles: 0 }), TFTP_ASSETS_PREFIX), opts.catalog)]
  return [configs, ...assets, probes]
}

/**
 * A profile's kernel or initrd fetched over TFTP is the same boot stage as over HTTP: the transfer carries step
 * 'kernel' or 'initrd' (the catalog's asset roles, keyed by `/assets/...` URL path), so the machine's record reaches
 * those stages and a shim-grub machine that got its initrd is not left showing as stuck at `tftp`.
 */
function profileAssets(serve: BootFileResolver, catalog: GrubFilesOptions['catalog']): BootFileResolver {
  return async (request) => {
    const found = await serve(request)
    if (found === undefined || Buffer.isBuffer(found)) return found
    const role = catalog().assetRoles.get(`/${request.path}`)
    return role === undefined ? found : { ...found, tags: { ...found.tags, step: role } }
  }
}
