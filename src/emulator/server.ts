import { randomUUID } from 'node:crypto'
import Fastify, { type FastifyError, type FastifyInstance, type FastifyRequest } from 'fastify'
import { EntraError, entraErrorBody } from './entra-errors'
import { CONTROL_PREFIX, registerControlApi, type ControlContext } from './control-api'
import { allowBrowsers } from './cors'
import { METADATA_PATHS, registerMetadata, type MetadataDependencies } from './metadata'
import type { TlsMaterial } from './ca'
import { registerManagedIdentity, type ManagedIdentityDependencies } from './managed-identity'
import { registerAuthorize } from './signin/authorize'
import { registerDeviceCode } from './signin/device-code'
import { registerLogout } from './signin/logout'
import { TOKEN_PATH, registerTokenEndpoint, type TokenEndpointDependencies } from './token-endpoint'
import type { WorkloadIssuers } from './workload-issuers'

export interface ServerOptions extends MetadataDependencies, TokenEndpointDependencies, ManagedIdentityDependencies {
  tls: TlsMaterial
  logger: boolean
  workloadIssuers: WorkloadIssuers
  /** The control API under /_emulator/; undefined turns it off. */
  controlApi?: ControlContext
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** Entra echoes a client-request-id it can use (a GUID, header or query) as the correlation id. */
function correlationId (request: FastifyRequest): string {
  const fromQuery = (request.query as Record<string, unknown> | undefined)?.['client-request-id']
  const candidate = request.headers['client-request-id'] ?? fromQuery
  return typeof candidate === 'string' && GUID.test(candidate) ? candidate : randomUUID()
}

export function buildServer (options: ServerOptions): FastifyInstance {
  const app = Fastify({
    https: { key: options.tls.key, cert: options.tls.cert },
    logger: options.logger,
    // Clients keep connections alive; close() must not wait for them.
    forceCloseConnections: true
  })

  // Entra reads first occurrences; any other body type is treated as empty, so Entra's
  // "must contain 'grant_type'" answers it instead of a framework error.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => {
    const params: Record<string, string> = {}
    for (const [name, value] of new URLSearchParams(body as string)) {
      if (!(name in params)) params[name] = value
    }
    done(null, params)
  })
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, _body, done) => { done(null, {}) })

  app.decorateRequest('correlationId', '')
  app.addHook('onRequest', async (request, reply) => {
    const id = correlationId(request)
    request.correlationId = id
    reply.header('client-request-id', id)
    reply.header('cache-control', 'no-store, no-cache')
    reply.header('pragma', 'no-cache')
  })

  app.setErrorHandler<FastifyError>(async (err, request, reply) => {
    const entraError = err instanceof EntraError
      ? err
      : (err.statusCode ?? 500) < 500
          ? new EntraError('invalid_request', 90100, err.message, err.statusCode)
          : new EntraError('server_error', 90099, 'The emulator failed to process the request.', 500)
    if (!(err instanceof EntraError) && entraError.status >= 500) request.log.error(err)
    return reply.code(entraError.status).headers(entraError.extras.headers ?? {}).send(entraErrorBody(entraError, request.correlationId))
  })

  app.setNotFoundHandler(async (request, reply) => reply.code(404).send({
    error: 'not_found',
    error_description: `The Entra ID emulator has no endpoint ${request.method} ${request.url.split('?')[0]}.`,
    correlation_id: request.correlationId
  }))

  allowBrowsers(app, [
    ...Object.values(METADATA_PATHS).map((url) => ({ method: 'GET' as const, url })),
    { method: 'POST', url: TOKEN_PATH },
    // A demo page's "revoke my sessions" button (CAE) calls it cross-origin.
    ...(options.controlApi === undefined ? [] : [{ method: 'POST' as const, url: `${CONTROL_PREFIX}/tenants/:tenantId/users/:objectId/revoke-sessions` }])
  ])
  registerMetadata(app, options)
  registerTokenEndpoint(app, options)
  registerAuthorize(app, options)
  registerDeviceCode(app, options)
  registerLogout(app, options)
  if (options.controlApi !== undefined) registerControlApi(app, options.controlApi)
  registerManagedIdentity(app, options)
  options.workloadIssuers.register(app)
  return app
}

declare module 'fastify' {
  interface FastifyRequest {
    correlationId: string
  }
}
