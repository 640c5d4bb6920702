/**
 * The service manager's readiness protocol (sd_notify(3)): READY=1 once serving, RELOADING=1 ... READY=1 around a
 * reload, STOPPING=1, STATUS= lines. The unit is Type=notify-reload, so `systemctl start` returns only once pxebox
 * serves, a `systemctl reload` during start-up waits for the start job instead of sending SIGHUP into Node's own
 * start-up (before any pxebox code runs, SIGHUP's default action kills the process), and `systemctl reload` waits
 * for the reload to finish. The datagram goes out through the native addon (native/sdnotify.c): Node has no AF_UNIX
 * datagram sockets, and systemd credits a message to its sender's PID, so a spawned `systemd-notify` would need
 * NotifyAccess=all (any child, tcpdump included, could then claim readiness) and still races its own exit.
 */
import { loadNative } from './native.js'

/** Sends one state; never throws (a failure goes to `problem`, the daemon keeps serving). */
export type Notify = (state: string) => void

/**
 * A notifier for this process. Without NOTIFY_SOCKET (not run by systemd as Type=notify*) it does nothing. With it
 * but without the addon, `warning` says so: systemd then never sees READY=1 and fails the start after
 * TimeoutStartSec, a loud failure for what is a packaging fault (the package always ships the addon).
 */
export function sdNotifier(problem: (message: string) => void): { notify: Notify; warning?: string } {
  if (!process.env.NOTIFY_SOCKET) return { notify: () => undefined }
  const { addon, reason } = loadNative()
  const send = addon?.sdNotify
  if (send === undefined) {
    const why = reason ?? 'the native addon predates sdNotify (npm run build rebuilds it)'
    return { notify: () => undefined, warning: `NOTIFY_SOCKET is set but pxebox cannot tell systemd it is ready: ${why}` }
  }
  return {
    notify: (state) => {
      try {
        send.call(addon, state)
      } catch (err) {
        problem(`sd_notify "${state.split('\n')[0]}": ${(err as Error).message}`)
      }
    },
  }
}

/** RELOADING=1 with the CLOCK_MONOTONIC time systemd (Type=notify-reload) needs to match it to its SIGHUP. */
export function reloadingState(): string {
  // process.hrtime is libuv's uv_hrtime: CLOCK_MONOTONIC on Linux, as MONOTONIC_USEC wants.
  return `RELOADING=1\nMONOTONIC_USEC=${process.hrtime.bigint() / 1000n}\nSTATUS=reloading the config`
}
