/**
 * Request-time answers for `/ignition` and `/generic`: the file prepared at load, rendered for one machine with its
 * group's metadata and selector and the request's labels (Matchbox's template data), as an HTTP status and body.
 * A machine gets a complete, valid config or an error status; never a half-rendered file.
 */
import { renderIgnition, renderTemplate, requestedIgnitionVersion, type ParsedTemplate, type PreparedIgnition } from '../ignition/index.js'
import type { Labels } from '../catalog/labels.js'
import type { Group } from '../catalog/model.js'
import { templateSelector } from '../catalog/templates.js'

/** What a render needs about the request. */
export interface RenderContext {
  readonly group: Group
  readonly labels: Labels
  /** The query string as sent (`.request.raw_query`). */
  readonly rawQuery: string
  /** The request's Accept header (Ignition names the spec versions it parses there). */
  readonly accept?: string
}

/** A rendered config, or why there is none: status, a one-line reason for the body and the log. */
export type RenderAnswer =
  | { readonly ok: true; readonly body: string; readonly contentType: string; readonly version?: string }
  | { readonly ok: false; readonly status: 404 | 406 | 500; readonly outcome: 'missing-key' | 'version' | 'invalid'; readonly reason: string }

/** Ignition's media type (ignition internal/resource/url.go sends it in Accept with `version=`). */
export const IGNITION_MEDIA_TYPE = 'application/vnd.coreos.ignition+json'

/**
 * The Content-Type for an Ignition body. Matchbox answers `application/json` (its renderJSON), which tools scripted
 * against Matchbox may compare; Ignition itself ignores the type. So a request whose Accept names Ignition's media
 * type gets that type with the version served, anything else gets Matchbox's `application/json`.
 */
export function ignitionContentType(accept: string | undefined, version: string): string {
  return accept !== undefined && accept.toLowerCase().includes(IGNITION_MEDIA_TYPE) ? `${IGNITION_MEDIA_TYPE};version=${version}` : 'application/json'
}

/**
 * Render a profile's Ignition for one machine. Missing template key: 404 (Matchbox's answer when it cannot render);
 * the machine's Ignition cannot parse any version we can serve the config in: 406; the rendered config does not
 * translate or validate: 500 (an operator error the load-time check could not see, e.g. a value from the request).
 */
export async function renderIgnitionFor(prepared: PreparedIgnition, ctx: RenderContext): Promise<RenderAnswer> {
  const requestedVersion = requestedIgnitionVersion(ctx.accept)
  const r = await renderIgnition(prepared, {
    metadata: ctx.group.metadata,
    selector: templateSelector(ctx.group, ctx.labels),
    labels: ctx.labels,
    rawQuery: ctx.rawQuery,
    ...(requestedVersion !== undefined ? { requestedVersion } : {}),
  })
  if (r.ok) return { ok: true, body: r.json, contentType: ignitionContentType(ctx.accept, r.version), version: r.version }
  const status = r.error.kind === 'missing-key' ? 404 : r.error.kind === 'version' ? 406 : 500
  return { ok: false, status, outcome: r.error.kind, reason: r.error.message }
}

/** Render a profile's generic file for one machine (same template engine and data as Ignition); a missing key is 404. */
export function renderGenericFor(template: ParsedTemplate, file: string, ctx: RenderContext): RenderAnswer {
  const r = renderTemplate(template, {
    metadata: ctx.group.metadata,
    selector: templateSelector(ctx.group, ctx.labels),
    labels: ctx.labels,
    rawQuery: ctx.rawQuery,
  })
  if (r.ok) return { ok: true, body: r.text, contentType: 'text/plain; charset=utf-8' }
  return { ok: false, status: 404, outcome: 'missing-key', reason: `${file}: ${r.error.message}` }
}
