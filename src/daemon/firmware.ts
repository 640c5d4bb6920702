/**
 * Firmware check: the TFTP root carries a manifest (firmware/manifest.json) with the SHA-256 of each iPXE binary
 * pxebox expects. A missing or changed file is reported at start; the daemon still starts with what it has, because
 * a half-working appliance that says what is wrong beats one that does not start during a rack power-on.
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Logger } from '../host/log.js'

/** The manifest file's shape. */
export interface FirmwareManifest {
  source: string
  files: Record<string, { sha256: string; for: string }>
}

/** One file's state against the manifest. */
export interface FirmwareFileStatus {
  file: string
  for: string
  status: 'ok' | 'missing' | 'changed'
  expected: string
  actual?: string
}

/** Result of checking a firmware folder. `manifest` is null when the folder has no (readable) manifest. */
export interface FirmwareReport {
  root: string
  manifest: FirmwareManifest | null
  problem?: string
  files: FirmwareFileStatus[]
}

/** Check every file listed in `<root>/manifest.json` against its SHA-256. Never throws. */
export function checkFirmware(root: string): FirmwareReport {
  let manifest: FirmwareManifest
  try {
    manifest = JSON.parse(readFileSync(join(root, 'manifest.json'), 'utf8')) as FirmwareManifest
    if (typeof manifest.files !== 'object' || manifest.files === null) throw new Error('no "files" object')
  } catch (err) {
    return { root, manifest: null, problem: `no usable manifest.json in ${root}: ${(err as Error).message}`, files: [] }
  }
  const files: FirmwareFileStatus[] = []
  for (const [file, entry] of Object.entries(manifest.files)) {
    let data: Buffer
    try {
      data = readFileSync(join(root, file))
    } catch {
      files.push({ file, for: entry.for, status: 'missing', expected: entry.sha256 })
      continue
    }
    const actual = createHash('sha256').update(data).digest('hex')
    files.push({ file, for: entry.for, status: actual === entry.sha256 ? 'ok' : 'changed', expected: entry.sha256, actual })
  }
  return { root, manifest, files }
}

/** Log what the operator should fix about the firmware (nothing when everything matches the manifest). */
export function logFirmware(report: FirmwareReport, logger: Logger): void {
  if (!report.manifest) {
    logger.warn({ root: report.root }, `firmware: ${report.problem}; run firmware/fetch.sh`)
    return
  }
  for (const f of report.files) {
    if (f.status === 'missing') logger.warn({ file: f.file, for: f.for }, `firmware ${f.file} is missing from ${report.root}: run firmware/fetch.sh`)
    else if (f.status === 'changed')
      logger.warn({ file: f.file, expected: f.expected, actual: f.actual }, `firmware ${f.file} differs from manifest.json (another iPXE build?); run firmware/fetch.sh`)
  }
}
