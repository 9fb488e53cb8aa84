import type { FastifyInstance, FastifyRequest } from 'fastify'
import { MULTI_TENANT_SEGMENTS, type Directory } from '../directory'
import type { Keyring } from '../keyring'
import type { SeedApplication } from '../seed-schema'
import { signedOutPage } from './pages'
import { allRedirectUris } from './redirect-uris'
import { send } from './replies'
import type { SignInState } from './state'

export interface LogoutDependencies {
  directory: Directory
  keyring: Keyring
  signIn: SignInState
}

/**
 * /logout ends the browser session and goes back to the application only when it is identified
 * (client_id, or the audience of a genuine id_token_hint) and the post_logout_redirect_uri is one of
 * its registered redirect URIs; otherwise it shows "You signed out", never an open redirect.
 */
export function registerLogout (app: FastifyInstance, deps: LogoutDependencies): void {
  app.get<{ Params: { tenant: string } }>('/:tenant/oauth2/v2.0/logout', async (request, reply) => {
    const answer = await answerFor(deps, request, new URLSearchParams(request.url.split('?')[1] ?? ''))
    return await send(reply, answer)
  })
  app.post<{ Params: { tenant: string } }>('/:tenant/oauth2/v2.0/logout', async (request, reply) => {
    const answer = await answerFor(deps, request, new URLSearchParams((request.body ?? {}) as Record<string, string>))
    return await send(reply, answer)
  })
}

async function answerFor (deps: LogoutDependencies, request: FastifyRequest<{ Params: { tenant: string } }>, params: URLSearchParams): Promise<Parameters<typeof send>[1]> {
  const session = deps.signIn.sessions.fromCookieHeader(request.headers.cookie)
  if (session !== undefined) deps.signIn.sessions.end(session.id)
  const cookie = deps.signIn.sessions.clearCookie()
  const target = params.get('post_logout_redirect_uri') ?? ''
  const client = await identifiedClient(deps, request.params.tenant, params)
  if (target !== '' && client !== undefined && allRedirectUris(client).includes(target)) {
    const url = new URL(target)
    const state = params.get('state')
    if (state !== null) url.searchParams.set('state', state)
    return { kind: 'redirect', location: url.toString(), cookie }
  }
  return { kind: 'page', page: signedOutPage(), cookie }
}

async function identifiedClient (deps: LogoutDependencies, segment: string, params: URLSearchParams): Promise<SeedApplication | undefined> {
  const tenants = MULTI_TENANT_SEGMENTS.has(segment.toLowerCase()) ? deps.directory.tenants : [deps.directory.tenant(segment)].filter((t) => t !== undefined)
  let clientId = params.get('client_id') ?? undefined
  const hint = params.get('id_token_hint')
  if (clientId === undefined && hint !== null) {
    try {
      const claims = await deps.keyring.verifySignature(hint)
      if (typeof claims.aud === 'string') clientId = claims.aud
    } catch {
      clientId = undefined
    }
  }
  if (clientId === undefined) return undefined
  const id = clientId
  return tenants.map((t) => deps.directory.application(t, id)).find((a) => a !== undefined)
}
