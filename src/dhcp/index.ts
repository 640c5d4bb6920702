/**
 * The DHCP protocol layer: codec, typed option values and the UDP server. Knows nothing about PXE policy.
 */
export { DhcpError, isDhcpError, type DhcpErrorCode } from './errors.js'
export * from './options.js'
export * from './values.js'
export * from './packet.js'
export * from './server.js'
export * from './pin.js'
