import type { FastifyInstance, FastifyPluginAsync, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import type { Dispatcher } from 'undici'
import { InvalidTokenError } from '../src/errors'
import { DEFAULTS } from '../src/config/defaults'
import { createHttpsAgent } from '../src/net/https-agent'
import type { Assertion } from '../src/validation/assertion'
import { EntraTrust, type TrustStatus } from '../src/validation/entra-trust'
import type { Principal } from '../src/validation/principal'
import { TokenValidator } from '../src/validation/token-validator'
import { authorize, type AccessPolicy } from '../src/validation/requirements'

export interface EntraAuthOptions {
  /** Authority host, e.g. https://login.microsoftonline.com (no trailing slash). */
  instance: string
  /** Home tenant GUID, or 'organizations' together with allowedTenants. */
  tenantId: string
  /** Tenants whose tokens are accepted; default [tenantId]. */
  allowedTenants?: readonly string[]
  /** Accepted `aud` values, e.g. [clientId, `api://${clientId}`]. */
  audiences: readonly string[]
  /** Tolerance for exp/nbf, seconds; default 300 like Microsoft's libraries. */
  clockSkewSeconds?: number
  /** Least time between two JWKS fetches caused by unknown kids, seconds; default 30. */
  keyRefreshCooldownSeconds?: number
  /** Verified tokens remembered (by hash, until they expire) so a repeated token skips all checks; default 10,000. */
  verifiedTokenCacheSize?: number
  /** Extra CA certificates (PEM) to trust for the authority, e.g. a local emulator's. */
  ca?: readonly string[]
  /** Deadline for one metadata or key fetch, connect to last byte, ms; default identity.timeoutMs's. */
  timeoutMs?: number
  /** Use this dispatcher for metadata and key fetches instead of a private one. */
  dispatcher?: Dispatcher
  /** Called for every JWKS fetch (metrics). */
  onKeyFetch?: (tenant: string, ok: boolean) => void
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The validated caller, set by `entraAuthenticate` (null before). */
    principal: Principal | null
    /** The verified token claims, for services that need more than the principal. */
    entraClaims: Record<string, unknown> | undefined
  }
  interface FastifyInstance {
    /** Validates the request's bearer token and sets `request.principal`; throws a GatewayError. */
    entraAuthenticate: (request: FastifyRequest) => Promise<Principal>
    /** A preHandler that authenticates and then applies an any-of scope/role policy. */
    entraRequire: (policy: AccessPolicy) => preHandlerAsyncHookHandler
    /** Metadata and key state, for readiness; `refresh` first tries to load what is missing. */
    entraStatus: (options?: { refresh?: boolean }) => Promise<TrustStatus>
  }
}

const kAssertion = Symbol('obo-gateway.assertion')
type WithAssertion = FastifyRequest & { [kAssertion]?: Assertion }

/** The incoming token of an authenticated request (the OBO assertion) and its hash. Never log it. */
export function assertionOf (request: FastifyRequest): Assertion {
  const token = (request as WithAssertion)[kAssertion]
  if (token === undefined) throw new InvalidTokenError('The request was not authenticated', 'invalid')
  return token
}

const entraAuth: FastifyPluginAsync<EntraAuthOptions> = async (fastify: FastifyInstance, options) => {
  const ownDispatcher = options.dispatcher === undefined
  const clockSkewSeconds = options.clockSkewSeconds ?? DEFAULTS.identity.clockSkewSeconds
  const timeoutMs = options.timeoutMs ?? DEFAULTS.identity.timeoutMs
  const dispatcher = options.dispatcher ?? createHttpsAgent({ ca: [...(options.ca ?? [])], timeouts: { connectMs: timeoutMs, headersMs: timeoutMs, bodyMs: timeoutMs } })
  const trust = new EntraTrust({
    instance: options.instance.replace(/\/+$/, ''),
    tenantId: options.tenantId,
    allowedTenants: options.allowedTenants ?? [options.tenantId],
    dispatcher,
    timeoutMs,
    keyRefreshCooldownMs: (options.keyRefreshCooldownSeconds ?? DEFAULTS.identity.keyRefreshCooldownSeconds) * 1000,
    onKeyRefreshError: (tenant, err) => fastify.log.warn({ tenant, reason: (err as Error).message }, 'signing key refresh failed; keeping the last good keys'),
    ...(options.onKeyFetch ? { onKeyFetch: options.onKeyFetch } : {})
  })

  const validator = new TokenValidator(trust, {
    audiences: options.audiences,
    clockSkewSeconds,
    verifiedTokenCacheSize: options.verifiedTokenCacheSize ?? DEFAULTS.identity.verifiedTokenCacheSize
  })
  fastify.decorateRequest('principal', null)
  fastify.decorateRequest('entraClaims', undefined)

  async function entraAuthenticate (request: FastifyRequest): Promise<Principal> {
    const { assertion, claims, principal } = await validator.validate(request.headers.authorization)
    request.principal = principal
    request.entraClaims = claims
    ;(request as WithAssertion)[kAssertion] = assertion
    return principal
  }

  fastify.decorate('entraAuthenticate', entraAuthenticate)
  fastify.decorate('entraRequire', (policy: AccessPolicy): preHandlerAsyncHookHandler => async function (request) {
    authorize(await entraAuthenticate(request), policy)
  })

  fastify.decorate('entraStatus', async (statusOptions: { refresh?: boolean } = {}): Promise<TrustStatus> => {
    const current = trust.status()
    const missing = current.metadata !== 'loaded' || Object.values(current.keys).includes('not_loaded')
    if (statusOptions.refresh === true && missing) {
      // A readiness probe must answer promptly even while the authority is slow.
      await Promise.race([trust.warm().catch(() => {}), new Promise((resolve) => setTimeout(resolve, 2000).unref())])
    }
    return trust.status()
  })

  fastify.addHook('onReady', async function () {
    trust.warm().catch((err: Error) => fastify.log.warn({ reason: err.message }, 'OpenID metadata not loaded yet; will retry on the first request'))
  })
  fastify.addHook('onClose', async () => {
    trust.close()
    if (ownDispatcher) await dispatcher.close()
  })
}

export default fp(entraAuth, { name: 'obo-gateway-entra-auth', fastify: '5.x' })
