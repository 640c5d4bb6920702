/**
 * Public API of the Ignition/Butane/template modules, for the `/ignition` route and `pxebox validate`.
 * Load time: `detectIgnitionKind` -> `prepareIgnitionSource` -> `lintPreparedIgnition` per group using the profile.
 * Request time: `requestedIgnitionVersion(accept header)` -> `renderIgnition`.
 */
export { formatIgnitionError, type IgnitionError } from './errors.js'
export { validateIgnition, type IgnitionValidation } from './validate.js'
export type { IgnitionConfig } from './schema.js'
export { configForRequestedVersion, type VersionedConfig } from './serve-version.js'
export { translateButane, type ButaneTranslation } from './butane/translate.js'
export { hasTemplateMarkers, lintTemplate, parseTemplate, renderTemplate, templateReferences, type ParsedTemplate, type TemplateData } from './template.js'
export {
  checkIgnitionForGroup,
  detectIgnitionKind,
  lintPreparedIgnition,
  prepareIgnitionSource,
  renderIgnition,
  type IgnitionSource,
  type IgnitionSourceKind,
  type PreparedIgnition,
  type RenderError,
  type RenderRequest,
} from './render.js'
export {
  DEFAULT_IGNITION_VERSION,
  IGNITION_VERSIONS,
  requestedIgnitionVersion,
  type IgnitionVersion,
} from './version.js'
