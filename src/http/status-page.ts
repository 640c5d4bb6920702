/**
 * `GET /`: a short human status page (name, version, what is loaded, links). The foundation's smoke test checks it
 * answers; operators open it to see that pxebox is up and which configuration it serves.
 */
import type { BootState } from '../catalog/state.js'

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

/** The status page HTML. */
export function statusPage(state: BootState, version: string, publicUrl: string): string {
  const def = state.matcher.defaultGroup
  const links = ['/boot.ipxe', '/assets/'].map((p) => `<li><a href="${p}">${p}</a></li>`).join('')
  return (
    '<!doctype html>\n<html><head><meta charset="utf-8"><title>pxebox</title></head><body>\n' +
    `<h1>pxebox ${escapeHtml(version)}</h1>\n` +
    `<p>${state.groupCount} groups, ${state.profiles.size} profiles, default group: ${def ? escapeHtml(def.id) : 'none'}; ` +
    `loaded ${escapeHtml(state.loadedAt)}. Public URL: ${escapeHtml(publicUrl)}</p>\n` +
    `<p>Endpoints (Matchbox-compatible): /boot.ipxe, /ipxe, /ignition, /generic, /metadata, /assets/</p>\n<ul>${links}</ul>\n` +
    '</body></html>\n'
  )
}
