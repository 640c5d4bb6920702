/**
 * Butane's encoding of inline and local file contents as RFC 2397 data URLs (coreos/butane base/util/url.go
 * MakeDataURL): try a %-escaped `data:,...`, a base64 `data:;base64,...` and, unless the config set `compression`
 * itself, gzip+base64 with `compression: gzip`; keep the shortest, charging gzip 4 extra characters for the word
 * "gzip". When the config did not set compression, the result carries `compression: ""` explicitly so a child config
 * cannot inherit a parent's compression (Butane's comment), which is why Butane output shows `"compression": ""`.
 */
import { gzipSync, constants } from 'node:zlib'

/** The unreserved set of RFC 2396 as vincent-petithory/dataurl's Escape uses it: everything else becomes %XX. */
function isUnreserved(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) ||
    (c >= 0x41 && c <= 0x5a) ||
    (c >= 0x30 && c <= 0x39) ||
    c === 0x2d || // -
    c === 0x5f || // _
    c === 0x2e || // .
    c === 0x21 || // !
    c === 0x7e || // ~
    c === 0x2a || // *
    c === 0x27 || // '
    c === 0x28 || // (
    c === 0x29 // )
  )
}

/** %-escape bytes with upper-case hex, byte by byte (so UTF-8 text becomes %E2%9C%93 etc.). */
export function escapeDataUrl(bytes: Uint8Array): string {
  let out = ''
  for (const b of bytes) out += isUnreserved(b) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`
  return out
}

/**
 * Gzip the way Go's compress/gzip at BestCompression frames it: no name, mtime 0, XFL 2, OS byte 255 ("unknown").
 * The deflate stream itself comes from zlib, not Go's compress/flate, so the bytes can differ from Butane's while
 * decompressing to the same contents.
 */
export function gzipLikeGo(bytes: Uint8Array): Buffer {
  const gz = gzipSync(bytes, { level: constants.Z_BEST_COMPRESSION })
  gz[9] = 0xff
  return gz
}

/** The chosen encoding: `compression` is "" when we chose (none or gzip), undefined when the config set its own. */
export interface DataUrl {
  source: string
  compression: string | undefined
}

/**
 * Encode contents as a data URL like Butane does. `configCompression` is the resource's own `compression` field:
 * when set, the contents are taken as already compressed and only escaped/base64 are tried.
 */
export function makeDataUrl(contents: Uint8Array, configCompression: string | undefined, allowCompression = true): DataUrl {
  const userCompressed = configCompression !== undefined && configCompression !== ''
  let compression: string | undefined = userCompressed ? undefined : ''
  let opaque = ',' + escapeDataUrl(contents)
  const b64 = ';base64,' + Buffer.from(contents).toString('base64')
  if (b64.length < opaque.length) opaque = b64
  if (!userCompressed && allowCompression) {
    const gz = ';base64,' + gzipLikeGo(contents).toString('base64')
    if (gz.length + 'gzip'.length < opaque.length) {
      opaque = gz
      compression = 'gzip'
    }
  }
  return { source: 'data:' + opaque, compression }
}
