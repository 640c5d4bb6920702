/**
 * nginx as the benches' reference HTTP server (Debian's nginx-light): a config under a temp folder (no system
 * folder touched), Debian's stock settings for static files, and how to find its worker processes.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

/** What the config serves. */
export interface NginxOptions {
  /** Temp folder for the pid file, logs and nginx's temp paths. */
  dir: string
  /** `host:port` to listen on. */
  listen: string
  /** `location` blocks' bodies by location, e.g. `{ '/assets/': 'alias /srv/assets/;' }`. */
  locations: Record<string, string>
  /** worker_processes (default 1; Debian's nginx.conf says auto). */
  workers?: number | 'auto'
}

/** nginx.conf text: Debian's stock http settings for static files (sendfile, tcp_nopush), no access log. */
export function nginxConfig(o: NginxOptions): string {
  const { dir } = o
  const locations = Object.entries(o.locations).map(([where, body]) => `    location ${where} { ${body} }\n`).join('')
  return (
    `daemon off;\nmaster_process on;\nworker_processes ${o.workers ?? 1};\npid ${dir}/nginx.pid;\nerror_log ${dir}/nginx-error.log warn;\n` +
    `user root;\nevents { worker_connections 4096; }\n` +
    `http {\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  default_type application/octet-stream;\n` +
    `  client_body_temp_path ${dir}/nx-body;\n  proxy_temp_path ${dir}/nx-proxy;\n  fastcgi_temp_path ${dir}/nx-fcgi;\n` +
    `  uwsgi_temp_path ${dir}/nx-uwsgi;\n  scgi_temp_path ${dir}/nx-scgi;\n` +
    `  server {\n    listen ${o.listen};\n${locations}  }\n}\n`
  )
}

/** The argv that runs nginx in the foreground on `conf` (errors before the config is read also go to `dir`). */
export function nginxArgv(dir: string, conf: string): string[] {
  return ['nginx', '-e', join(dir, 'nginx-error.log'), '-p', dir, '-c', conf]
}

/** The master's children (its workers), or [] when it is gone. */
export function nginxWorkers(masterPid: number): number[] {
  try {
    return readFileSync(`/proc/${masterPid}/task/${masterPid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
  } catch {
    return []
  }
}
