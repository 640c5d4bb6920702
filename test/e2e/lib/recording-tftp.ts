/**
 * A throwaway TFTP server for VM experiments that pxebox is not wired for yet (issue 19's Secure Boot chain): pxebox's
 * own TFTP server (src/tftp) with a fixed table of files, recording every request and every transfer's end as one
 * JSON line, so a test can read back exactly which names the firmware, shim and GRUB asked for, in which order, and
 * how many bytes each transfer moved (a refused iPXE binary is fetched in full before the firmware checks it).
 *
 * The server is recording-tftp-main.ts, run as its own process inside the lab's namespace; this file is what tests
 * share with it: the table it serves and the log it writes.
 */
import { readFileSync } from 'node:fs'

/** The files the server answers. */
export interface RecordingTftpTable {
  /** TFTP path -> file on the host. */
  files?: Record<string, string>
  /** TFTP path -> generated text (GRUB configs). */
  texts?: Record<string, string>
}

/** One line of the log: a request as it arrived, or the end of a transfer as the server's event reported it. */
export type RecordingTftpEntry =
  | { kind: 'request'; ms: number; peer: string; filename: string; found: boolean }
  | {
      kind: 'transfer'
      ms: number
      peer: string
      file: string
      outcome: string
      bytes?: number
      tsizeProbe?: boolean
      /** Negotiated block and window size (what each client asks for decides its speed). */
      blksize?: number
      windowsize?: number
      durationMs?: number
    }

/** Read the log written by this server (complete lines only). */
export function readRecordingLog(path: string): RecordingTftpEntry[] {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch {
    return []
  }
  return text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as RecordingTftpEntry)
}

/** TFTP clients send `/grub/grub.cfg` or `grub/grub.cfg`; the table keys have no leading slash. */
export function tableKey(filename: string): string {
  return filename.replace(/^\/+/, '')
}

