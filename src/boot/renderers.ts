/**
 * Pluggable renderers for `/ignition` and `/generic`. The HTTP routes hand a renderer the template's file name, its
 * text and the matched machine; the renderer returns the body. The defaults here serve files as they are (raw
 * Ignition JSON is checked to be JSON); Butane and Go-style templates are src/ignition/'s job and plug in here.
 */
import type { Labels } from './labels.js'
import type { Group, Profile } from './model.js'

/** Everything a renderer may use about the request. */
export interface TemplateContext {
  readonly group: Group
  readonly profile: Profile
  readonly labels: Labels
  /** Matchbox's template data: metadata + selector + request (see metadata.ts). */
  readonly variables: Readonly<Record<string, unknown>>
}

/** A rendered config. */
export interface RenderedConfig {
  readonly body: string
  readonly contentType: string
}

/** Renders one template for one machine; throws (any Error) when it cannot, and the route answers 500 with its message. */
export type TemplateRenderer = (name: string, source: string, ctx: TemplateContext) => RenderedConfig | Promise<RenderedConfig>

/** Thrown by the default renderers; `code` is stable. */
export class RenderError extends Error {
  readonly code: 'ERR_NOT_JSON' | 'ERR_NO_RENDERER'
  constructor(code: RenderError['code'], message: string) {
    super(message)
    this.name = 'RenderError'
    this.code = code
  }
}

/**
 * Default Ignition renderer: serves a file that is already Ignition JSON (Matchbox's `.ign`/`.ignition`, or any file
 * whose text is a JSON object). Anything else needs the Butane renderer from src/ignition/.
 */
export const rawIgnitionRenderer: TemplateRenderer = (name, source) => {
  let parsed: unknown
  try {
    parsed = JSON.parse(source)
  } catch (err) {
    if (/\.(ign|ignition|json)$/.test(name)) {
      throw new RenderError('ERR_NOT_JSON', `ignition ${name} is not valid JSON: ${(err as Error).message}`)
    }
    throw new RenderError('ERR_NO_RENDERER', `ignition ${name} is not Ignition JSON and no Butane renderer is configured`)
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new RenderError('ERR_NOT_JSON', `ignition ${name} is JSON but not an object`)
  }
  return { body: source, contentType: 'application/json' }
}

/** Default generic renderer: the file as text. */
export const rawGenericRenderer: TemplateRenderer = (_name, source) => ({ body: source, contentType: 'text/plain; charset=utf-8' })
