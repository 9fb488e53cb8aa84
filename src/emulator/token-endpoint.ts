import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import { createDecoder } from 'fast-jwt'
import type { ClientAssertionVerifier } from './client-assertions'
import type { ConditionalAccess } from './conditional-access'
import { parseBasic, type TokenParams } from './client-auth'
import { MULTI_TENANT_SEGMENTS, type Directory } from './directory'
import { EntraError, missingParameter, tenantNotFound } from './entra-errors'
import { RawAnswer, failureAnswer, type FailureContext, type FailureInjector } from './failure-rules'
import { authorizationCodeGrant } from './grants/authorization-code'
import { clientCredentialsGrant } from './grants/client-credentials'
import { DEVICE_CODE_GRANT_TYPES, deviceCodeGrant } from './grants/device-code'
import type { Grant } from './grants/grant'
import { JWT_BEARER, onBehalfOfGrant } from './grants/on-behalf-of'
import { passwordGrant } from './grants/password'
import { refreshTokenGrant } from './grants/refresh-token'
import type { Keyring } from './keyring'
import { checkResourceIndicator } from './resource-indicator'
import type { FailureKind, SeedTenant } from './seed-schema'
import type { SignInState } from './signin/state'
import type { TokenIssuer } from './tokens'

export interface TokenRequestRecord {
  grantType: string
  clientId: string
  tenantId: string
  at: number
  /** The user the request is about (OBO: the assertion's `oid`, read without verifying; password: the seeded user). */
  userObjectId?: string
  /** The HTTP status the emulator answered with. */
  status: number
  /** The injected failure that answered (or delayed) this request. */
  failure?: FailureKind
  /** The AADSTS code of a refusal (e.g. 50173 for a revoked session, 50076 for MFA). */
  errorCode?: number
  /** The `claims` parameter as sent (JSON text), e.g. a CAE `nbf` request merged with `xms_cc`. */
  claims?: string
}

export interface TokenEndpointDependencies {
  directory: Directory
  keyring: Keyring
  issuer: TokenIssuer
  assertionVerifier: ClientAssertionVerifier
  failures: FailureInjector
  /** Session revocations and MFA policies. */
  conditionalAccess: ConditionalAccess
  /** Codes, refresh tokens, device codes and consents of interactive sign-in. */
  signIn: SignInState
  record: (entry: TokenRequestRecord) => void
}

const GRANTS = new Map<string, Grant>([
  ['password', passwordGrant],
  [JWT_BEARER, onBehalfOfGrant],
  ['client_credentials', clientCredentialsGrant],
  ['authorization_code', authorizationCodeGrant],
  ['refresh_token', refreshTokenGrant],
  ...DEVICE_CODE_GRANT_TYPES.map((type): [string, Grant] => [type, deviceCodeGrant])
])

const decode = createDecoder()

export const TOKEN_PATH = '/:tenant/oauth2/v2.0/token'

export function registerTokenEndpoint (app: FastifyInstance, deps: TokenEndpointDependencies): void {
  app.post<{ Params: { tenant: string } }>(TOKEN_PATH, async (request, reply) => {
    const params = (request.body ?? {}) as TokenParams
    const grantType = params.grant_type ?? ''
    const clientId = params.client_id ?? parseBasic(request.headers.authorization)?.clientId ?? ''
    let tenantId = request.params.tenant
    let user: FailureContext['user']
    let status = 200
    let failure: FailureKind | undefined
    let errorCode: number | undefined
    try {
      if (grantType === '') throw missingParameter('grant_type')
      const grant = GRANTS.get(grantType)
      if (grant === undefined) throw new EntraError('unsupported_grant_type', 70003, `The app requested an unsupported grant type '${grantType}'.`)
      const missing = grant.required.find((name) => (params[name] ?? '') === '')
      if (missing !== undefined) throw missingParameter(missing)
      const subject = grant.subject?.(params, deps.signIn)
      const tenant = resolveTenant(deps.directory, request.params.tenant, grantType, params, subject?.tenantId)
      tenantId = tenant.id
      checkResourceIndicator(deps.directory, tenant, params)
      user = subject?.user ?? requestUser(deps.directory, tenant, grantType, params)

      const context: FailureContext = { grantType, clientId, tenantId, scopes: (params.scope ?? '').split(' ').filter((s) => s !== ''), ...(user === undefined ? {} : { user }) }
      const rule = deps.failures.take(context)
      if (rule !== undefined) {
        failure = rule.kind
        if (rule.kind === 'slow') {
          await sleep(rule.delayMs ?? 5_000)
        } else {
          const answer = failureAnswer(rule, context)
          if (answer instanceof RawAnswer) {
            status = answer.status
            return await reply.code(answer.status).headers(answer.headers).send(answer.body)
          }
          if (answer !== undefined) throw answer
        }
      }
      return await grant.issue({
        ...deps,
        tenant,
        params,
        authorization: request.headers.authorization,
        origin: request.headers.origin,
        assertions: { verifier: deps.assertionVerifier, segment: request.params.tenant }
      })
    } catch (err) {
      status = err instanceof EntraError ? err.status : 500
      if (err instanceof EntraError) errorCode = err.code
      throw err
    } finally {
      deps.record({
        grantType,
        clientId,
        tenantId,
        at: Date.now(),
        ...(user === undefined ? {} : { userObjectId: user.oid }),
        status,
        ...(failure === undefined ? {} : { failure }),
        ...(errorCode === undefined ? {} : { errorCode }),
        ...(params.claims === undefined ? {} : { claims: params.claims })
      })
    }
  })
}

/**
 * Who a request is about, for failure rules and request counts. The OBO assertion is only decoded
 * here; the grant verifies it afterwards, so a forged oid is counted but never gets a token.
 */
function requestUser (directory: Directory, tenant: SeedTenant, grantType: string, params: TokenParams): FailureContext['user'] {
  if (grantType === 'password') {
    const seeded = directory.user(tenant, params.username ?? '')
    return seeded === undefined ? undefined : { oid: seeded.objectId, username: seeded.username }
  }
  if (grantType !== JWT_BEARER) return undefined
  let claims: Record<string, unknown>
  try {
    claims = decode(params.assertion ?? '') as Record<string, unknown>
  } catch {
    return undefined
  }
  if (claims.idtyp === 'app' || typeof claims.oid !== 'string') return undefined
  const username = [claims.preferred_username, claims.upn, claims.unique_name].find((v): v is string => typeof v === 'string')
  return { oid: claims.oid, ...(username === undefined ? {} : { username }) }
}

/**
 * `common`/`organizations` name no tenant, so Entra finds it from the request: the user's home
 * tenant for the password grant, the assertion's `tid` for OBO (the grant then verifies that token).
 */
function resolveTenant (directory: Directory, segment: string, grantType: string, params: TokenParams, recordedTenantId: string | undefined): SeedTenant {
  if (!MULTI_TENANT_SEGMENTS.has(segment.toLowerCase())) {
    const tenant = directory.tenant(segment)
    if (tenant === undefined) throw tenantNotFound(segment)
    return tenant
  }
  const recorded = recordedTenantId === undefined ? undefined : directory.tenant(recordedTenantId)
  if (recorded !== undefined) return recorded
  if (grantType === 'password') {
    const tenant = directory.tenantOfUser(params.username ?? '')
    if (tenant === undefined) throw new EntraError('invalid_grant', 50034, `The user account ${params.username ?? ''} does not exist in any tenant of this emulator.`)
    return tenant
  }
  if (grantType === JWT_BEARER) {
    let tid: unknown
    try {
      tid = (decode(params.assertion ?? '') as { tid?: unknown }).tid
    } catch {
      throw new EntraError('invalid_grant', 50027, 'JWT token is invalid or malformed.')
    }
    const tenant = typeof tid === 'string' ? directory.tenant(tid) : undefined
    if (tenant === undefined) throw tenantNotFound(String(tid))
    return tenant
  }
  throw new EntraError('invalid_request', 9001023, `The grant type isn't supported over the /${segment} endpoint. Use the tenant-specific endpoint.`)
}
