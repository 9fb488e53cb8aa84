import { MULTI_TENANT_SEGMENTS, type Directory } from '../directory'
import { EntraError, missingParameter, tenantNotFound } from '../entra-errors'
import { checkResourceIndicator } from '../resource-indicator'
import { delegatedScopes, type ResourceScopes } from '../scopes'
import type { SeedApplication, SeedTenant } from '../seed-schema'
import { signInClaims, type SignInClaims } from './claims'
import { registeredRedirect, type RedirectKind } from './redirect-uris'

export type ResponseMode = 'query' | 'fragment' | 'form_post'
export type Prompt = 'login' | 'none' | 'consent' | 'select_account'

const PROMPTS = new Set<string>(['login', 'none', 'consent', 'select_account'])
const RESPONSE_MODES = new Set<string>(['query', 'fragment', 'form_post'])
const OIDC_SCOPES = new Set(['openid', 'profile', 'offline_access', 'email'])
/** Longer states are refused rather than reflected (Entra bounds the whole query string). */
export const MAX_STATE_LENGTH = 2048

/** Where an /authorize answer goes once the client and redirect URI are known to be genuine. */
export interface ReplyTarget {
  redirectUri: string
  responseMode: ResponseMode
  state?: string
}

export interface AuthorizeRequest extends ReplyTarget {
  /** The tenant segment the request used (a GUID, a name, common, organizations). */
  segment: string
  /** The tenant signing in: the named one, or for common/organizations the client's home tenant. */
  tenant: SeedTenant
  app: SeedApplication
  redirectKind: RedirectKind
  scope: string
  /** Per resource, in the order asked; the first is what the code redeems for by default. */
  resources: ResourceScopes[]
  nonce?: string
  prompt?: Prompt
  loginHint?: string
  claims?: string
  demands: SignInClaims
  codeChallenge?: string
  codeChallengeMethod?: 'S256' | 'plain'
  /** client_info=1: the answer carries msal's account key. */
  clientInfo: boolean
}

/** A refusal shown as Entra's error page: nothing proves the redirect URI is the client's. */
export class PageFailure {
  constructor (readonly failure: EntraError) {}
}

/** A refusal sent back to the (registered) redirect URI. */
export class RedirectFailure {
  constructor (readonly failure: EntraError, readonly target: ReplyTarget) {}
}

/**
 * Validates an /authorize request in Entra's order: tenant, client and redirect URI first (their
 * failures are pages), then everything else (redirected back with error and state).
 */
export function parseAuthorizeRequest (directory: Directory, segment: string, params: URLSearchParams): AuthorizeRequest {
  const one = (name: string): string | undefined => params.getAll(name)[0]
  for (const name of ['client_id', 'redirect_uri']) {
    if (params.getAll(name).length > 1) throw new PageFailure(duplicate(name))
  }
  const multi = MULTI_TENANT_SEGMENTS.has(segment.toLowerCase())
  const named = multi ? undefined : directory.tenant(segment)
  if (!multi && named === undefined) throw new PageFailure(tenantNotFound(segment))

  const clientId = one('client_id') ?? ''
  if (clientId === '') throw new PageFailure(missingParameter('client_id'))
  const tenant = named ?? directory.tenants.find((t) => directory.application(t, clientId) !== undefined)
  const app = tenant === undefined ? undefined : directory.application(tenant, clientId)
  if (tenant === undefined || app === undefined) {
    throw new PageFailure(new EntraError('unauthorized_client', 700016, `Application with identifier '${clientId}' was not found in the directory '${named?.name ?? segment}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`))
  }
  const redirectUri = one('redirect_uri') ?? ''
  if (redirectUri === '') throw new PageFailure(missingParameter('redirect_uri'))
  const redirectKind = registeredRedirect(app, redirectUri)
  if (redirectKind === undefined) {
    throw new PageFailure(new EntraError('invalid_request', 50011, `The redirect URI '${redirectUri}' specified in the request does not match the redirect URIs configured for the application '${app.clientId}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn more about how to fix this.`))
  }
  const state = one('state')
  if (state !== undefined && state.length > MAX_STATE_LENGTH) {
    throw new PageFailure(new EntraError('invalid_request', 90015, `The query string is too long: 'state' has ${state.length} characters, at most ${MAX_STATE_LENGTH} are accepted.`))
  }

  const mode = one('response_mode')
  const target: ReplyTarget = {
    redirectUri,
    responseMode: mode !== undefined && RESPONSE_MODES.has(mode) ? mode as ResponseMode : 'query',
    ...(state === undefined ? {} : { state })
  }
  const fail = (error: EntraError): RedirectFailure => new RedirectFailure(error, target)
  if (mode !== undefined && !RESPONSE_MODES.has(mode)) throw fail(new EntraError('invalid_request', 70007, `'${mode}' is not a supported value of 'response_mode'. Use query, fragment or form_post.`))
  for (const name of new Set(params.keys())) {
    if (params.getAll(name).length > 1) throw fail(duplicate(name))
  }

  const responseType = one('response_type') ?? ''
  if (responseType === '') throw fail(missingParameter('response_type'))
  if (responseType !== 'code') {
    const types = responseType.split(' ')
    if (types.every((t) => ['code', 'id_token', 'token'].includes(t))) {
      throw fail(new EntraError('unsupported_response_type', 700054, `response_type '${responseType}' is not enabled for the application. This emulator issues authorization codes only (no implicit grant).`))
    }
    throw fail(new EntraError('unsupported_response_type', 70005, `The response_type '${responseType}' isn't supported. Use 'code'.`))
  }

  const scope = one('scope') ?? ''
  if (scope.trim() === '') throw fail(missingParameter('scope'))
  let resources: ResourceScopes[]
  let demands: SignInClaims
  try {
    resources = resourceScopes(directory, tenant, scope, app)
    checkResourceIndicator(directory, tenant, { resource: one('resource'), scope })
    demands = signInClaims(one('claims'))
  } catch (err) {
    if (err instanceof EntraError) throw fail(err)
    throw err
  }

  const prompt = one('prompt')
  if (prompt !== undefined && !PROMPTS.has(prompt)) throw fail(new EntraError('invalid_request', 90100, `Invalid value '${prompt}' for the parameter 'prompt'. Use login, none, consent or select_account.`))

  const codeChallenge = one('code_challenge')
  const method = one('code_challenge_method')
  if (method !== undefined && method !== 'S256' && method !== 'plain') throw fail(new EntraError('invalid_request', 90100, `Invalid value '${method}' for the parameter 'code_challenge_method'. Use S256.`))
  if (codeChallenge !== undefined && (codeChallenge.length < 43 || codeChallenge.length > 128)) {
    throw fail(new EntraError('invalid_request', 501491, 'Invalid size of Code_Challenge parameter.'))
  }
  if (redirectKind === 'spa' && (codeChallenge === undefined || method !== 'S256')) {
    throw fail(new EntraError('invalid_request', 9002325, codeChallenge === undefined
      ? 'Proof Key for Code Exchange is required for cross-origin authorization code redemption.'
      : "Proof Key for Code Exchange with code_challenge_method 'S256' is required for cross-origin authorization code redemption; 'plain' is not accepted."))
  }

  const optional = (name: string, key: string): Record<string, string> => {
    const value = one(name)
    return value === undefined || value === '' ? {} : { [key]: value }
  }
  return {
    ...target,
    segment,
    tenant,
    app,
    redirectKind,
    scope,
    resources,
    demands,
    clientInfo: one('client_info') === '1',
    ...optional('nonce', 'nonce'),
    ...(prompt === undefined ? {} : { prompt: prompt as Prompt }),
    ...optional('login_hint', 'loginHint'),
    ...optional('claims', 'claims'),
    ...(codeChallenge === undefined ? {} : { codeChallenge, codeChallengeMethod: method === 'S256' ? 'S256' : 'plain' })
  }
}

/** /authorize may name several resources (consent covers them all); OIDC-only asks for none. */
export function resourceScopes (directory: Directory, tenant: SeedTenant, raw: string, client: SeedApplication): ResourceScopes[] {
  const groups = new Map<SeedApplication | string, string[]>()
  const oidc = raw.split(' ').filter((s) => OIDC_SCOPES.has(s.toLowerCase()))
  for (const value of raw.split(' ').filter((s) => s !== '' && !OIDC_SCOPES.has(s.toLowerCase()))) {
    const slash = value.lastIndexOf('/')
    const resource = slash > 0 ? directory.resource(tenant, value.slice(0, slash)) : undefined
    const key = resource ?? value
    groups.set(key, [...(groups.get(key) ?? []), value])
  }
  return [...groups.values()].map((values) => delegatedScopes(directory, tenant, [...oidc, ...values].join(' '), client))
}

function duplicate (name: string): EntraError {
  return new EntraError('invalid_request', 90100, `The request has more than one '${name}' parameter; send each parameter once.`)
}
