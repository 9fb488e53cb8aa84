import type { FastifyInstance, FastifyPluginAsync, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import fastifyJwt from '@fastify/jwt'
import type { Dispatcher } from 'undici'
import { GatewayError, InvalidTokenError, type InvalidTokenReason } from '../src/errors'
import { DEFAULTS } from '../src/config/defaults'
import { createHttpsAgent } from '../src/net/https-agent'
import { assertionFrom, type Assertion } from '../src/validation/assertion'
import { bearerCredential, checkBearerSyntax } from '../src/validation/bearer'
import { EntraTrust, type TrustStatus } from '../src/validation/entra-trust'
import { principalFromClaims, type Principal } from '../src/validation/principal'
import { VerifiedTokenCache } from '../src/validation/verified-token-cache'
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
    entraJwtVerify: () => Promise<Record<string, unknown>>
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
const kCandidate = Symbol('obo-gateway.candidate-token')
type WithAssertion = FastifyRequest & { [kAssertion]?: Assertion, [kCandidate]?: string }

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

  await fastify.register(fastifyJwt, {
    secret: (_request: FastifyRequest, token: unknown) => trust.keyFor(token as Parameters<EntraTrust['keyFor']>[0]),
    decode: { complete: true },
    verify: {
      algorithms: ['RS256'],
      allowedAud: [...options.audiences],
      clockTolerance: clockSkewSeconds * 1000,
      requiredClaims: ['exp', 'aud', 'iss'],
      // Parsed once in entraAuthenticate; the verified-token cache sits in front of fast-jwt.
      extractToken: (request: FastifyRequest) => (request as WithAssertion)[kCandidate]
    },
    messages: { authorizationTokenInvalid: (err: Error) => err.message },
    namespace: 'entra',
    jwtVerify: 'entraJwtVerify',
    jwtDecode: 'entraJwtDecode',
    jwtSign: 'entraJwtSign',
    decoratorName: 'entraClaims'
  })

  fastify.decorateRequest('principal', null)
  const verified = new VerifiedTokenCache(options.verifiedTokenCacheSize ?? DEFAULTS.identity.verifiedTokenCacheSize, clockSkewSeconds)

  async function entraAuthenticate (request: FastifyRequest): Promise<Principal> {
    const token = bearerCredential(request.headers.authorization)
    const assertion = assertionFrom(token)
    let result = verified.get(assertion.sha256)
    if (result === undefined) {
      checkBearerSyntax(token)
      ;(request as WithAssertion)[kCandidate] = token
      let claims: Record<string, unknown>
      try {
        claims = await request.entraJwtVerify()
      } catch (err) {
        throw asGatewayError(err)
      }
      // Shared by every later request with this token: nobody may change it.
      result = deepFreeze({ claims, principal: principalFromClaims(claims, String(claims.tid).toLowerCase()) })
      verified.set(assertion.sha256, result)
    }
    request.principal = result.principal
    request.entraClaims = result.claims
    ;(request as WithAssertion)[kAssertion] = assertion
    return result.principal
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

function deepFreeze<T> (value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const member of Object.values(value)) deepFreeze(member)
  }
  return value
}

// @fastify/jwt folds several fast-jwt codes into one; the message still says which.
function reasonOf (code: string, message: string): InvalidTokenReason {
  if (code === 'FAST_JWT_INACTIVE') return 'not_yet_valid'
  if (code === 'FAST_JWT_INVALID_ALGORITHM') return 'algorithm'
  if (code === 'FAST_JWT_MALFORMED' || /malformed|not a valid/i.test(message)) return 'malformed'
  if (/signature/i.test(message)) return 'signature'
  if (/claim/i.test(message)) return 'claims'
  return 'invalid'
}

/** @fastify/jwt and fast-jwt errors carry codes; their messages never include the token. */
function asGatewayError (err: unknown): unknown {
  if (err instanceof GatewayError) return err
  const code = (err as { code?: unknown }).code
  if (code === 'FST_JWT_AUTHORIZATION_TOKEN_EXPIRED') return new InvalidTokenError('The token has expired', 'expired')
  if (typeof code === 'string' && (code.startsWith('FST_JWT_') || code.startsWith('FAST_JWT_'))) {
    const message = (err as Error).message
    return new InvalidTokenError(`The token is invalid: ${message}`, reasonOf(code, message))
  }
  return err
}

export default fp(entraAuth, { name: 'obo-gateway-entra-auth', fastify: '5.x' })
