/**
 * pxebox TFTP: read-only, octet mode, blksize/tsize/timeout/windowsize (RFC 2347-2349, 7440). Knows nothing about PXE:
 * the caller passes a file handler (request -> file, not-found or refusal) and a transfer log callback; the boot layer
 * (boot/tftp-files.ts) supplies both for PXE clients.
 */
export { startTftp, type TftpServer, type TftpServerOptions, type TftpTransferEntry, type TftpOutcome } from './server.js'
export {
  normalizeRequestPath,
  TftpAccessError,
  type TftpFileHandler,
  type TftpFile,
  type TftpRequestInfo,
  type DiskContent,
} from './files.js'
export { createTftpFolder, folderHandler, type TftpFolder, type TftpFolderOptions } from './folder.js'
export type { LossHook } from './transfer.js'
