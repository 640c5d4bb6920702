/**
 * pxebox TFTP: read-only, octet mode, blksize/tsize/timeout/windowsize (RFC 2347-2349, 7440).
 * The daemon calls startTftp({ address, port: 69, root, maxBlockSize, maxWindowSize, limits, logger, events }).
 */
export { startTftp, type TftpServer, type TftpServerOptions } from './server.js'
export {
  createFileHandler,
  normalizeRequestPath,
  TftpAccessError,
  type TftpFileHandler,
  type TftpFile,
  type TftpRequestInfo,
  type VirtualFileRequest,
} from './files.js'
export type { LossHook } from './transfer.js'
