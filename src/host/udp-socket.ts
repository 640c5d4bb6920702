/** Promise forms of node:dgram's bind and close, shared by the UDP servers (DHCP, syslog). */
import type { Socket } from 'node:dgram'

/** Binds `socket` exclusively; rejects with the bind error (EADDRINUSE, EACCES...) instead of emitting it. */
export function bindSocket(socket: Socket, port: number, address?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err)
    socket.once('error', onError)
    socket.bind({ port, address, exclusive: true }, () => {
      socket.off('error', onError)
      resolve()
    })
  })
}

/** Closes `socket`; resolves also when it was already closed. */
export function closeSocket(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      socket.close(() => resolve())
    } catch {
      resolve() // already closed
    }
  })
}
