/**
 * JSON request bodies for `/v1`, bounded before anything recursive touches them. A PUT with 100,000 nested arrays
 * parsed fine and then overflowed the stack in validation and loading: a 500 for bad input (issue 13 item 13).
 * Nesting is counted in one iterative pass over the text, so the check itself cannot overflow; size is capped by
 * fastify's bodyLimit on the parser.
 */

/** Largest `/v1` body, bytes (a profile or group is a few KB; metadata rarely more than tens). */
export const MAX_BODY_BYTES = 1024 * 1024
/** Deepest nesting of objects and arrays accepted (a group's metadata is a few levels). */
export const MAX_JSON_DEPTH = 32

/** An error fastify answers with its status and message (the API's error handler sends 4xx messages as they are). */
export class JsonBodyError extends Error {
  readonly statusCode = 400
  readonly code = 'PXEBOX_JSON_BODY'
  override readonly name = 'JsonBodyError'
}

/** Deepest `{`/`[` nesting in JSON text, not counting brackets inside strings; stops counting past `limit`. */
export function jsonNesting(text: string, limit: number): number {
  let depth = 0
  let deepest = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 92) i++ // backslash: skip the escaped character
      else if (c === 34) inString = false
    } else if (c === 34) inString = true
    else if (c === 123 || c === 91) {
      depth++
      if (depth > deepest && (deepest = depth) > limit) return deepest
    } else if (c === 125 || c === 93) depth--
  }
  return deepest
}

/** Parse a `/v1` JSON body, or throw JsonBodyError (400) saying what is wrong. */
export function parseJsonBody(text: string): unknown {
  if (text.trim() === '') return undefined
  if (jsonNesting(text, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) {
    throw new JsonBodyError(`body nests objects/arrays deeper than ${MAX_JSON_DEPTH} levels`)
  }
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new JsonBodyError(`body is not valid JSON: ${(err as Error).message}`)
  }
}
