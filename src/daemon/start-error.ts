/**
 * Start-up failures the operator must fix (exit code 2), and the translation of bind errors into them: a bare
 * EADDRINUSE says nothing about which port or what else might hold it.
 */

/** A start-up failure the operator must fix (exit code 2): bad interface, missing privileges, port in use... */
export class StartError extends Error {
  constructor(readonly code: string, message: string) {
    super(message)
    this.name = 'StartError'
  }
}

/** `err` as a StartError when it is one the operator can act on (bind errors, coded errors); else unchanged. */
export function asStartError(err: unknown): Error {
  const e = err as NodeJS.ErrnoException & { port?: number; address?: string }
  if (e.code === 'EADDRINUSE') return new StartError('EADDRINUSE', `port ${e.port ?? '?'} on ${e.address ?? '?'} is already in use (another dnsmasq, tftpd or pxebox running?)`)
  if (e.code === 'EADDRNOTAVAIL') return new StartError('EADDRNOTAVAIL', `cannot bind ${e.address ?? '?'}:${e.port ?? '?'}: address not on this box`)
  if (e.code === 'EACCES') return new StartError('EACCES', `permission denied binding port ${e.port ?? '?'}: run as root or with CAP_NET_BIND_SERVICE`)
  if (err instanceof StartError) return err
  if (e.code && typeof e.message === 'string') return new StartError(e.code, e.message)
  return err as Error
}
