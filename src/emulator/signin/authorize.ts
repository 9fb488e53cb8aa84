import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Directory } from '../directory'
import { EntraError } from '../entra-errors'
import { clientInfo, type UserIdentity } from '../tokens'
import { PageFailure, RedirectFailure, parseAuthorizeRequest, type AuthorizeRequest } from './authorize-request'
import type { Purpose, Reply, SignedIn } from './flow'
import { errorPage } from './pages'
import { errorReply, replyTo, send, sendPage } from './replies'
import type { SignInState } from './state'

export interface AuthorizeDependencies {
  directory: Directory
  signIn: SignInState
}

/** /authorize (GET, and POST as form_post forms send it) and the pages' own form target, /login. */
export function registerAuthorize (app: FastifyInstance, deps: AuthorizeDependencies): void {
  const { signIn } = deps
  const authorize = async (request: FastifyRequest<{ Params: { tenant: string } }>, params: URLSearchParams): Promise<Reply> => {
    let parsed: AuthorizeRequest
    try {
      parsed = parseAuthorizeRequest(deps.directory, request.params.tenant, params)
    } catch (err) {
      if (err instanceof PageFailure) return { kind: 'page', page: errorPage(err.failure, request.correlationId) }
      if (err instanceof RedirectFailure) return errorReply(err.target, err.failure, request.correlationId)
      throw err
    }
    const session = signIn.sessions.fromCookieHeader(request.headers.cookie)
    const purpose = authorizePurpose(parsed, signIn, request.correlationId)
    return parsed.prompt === 'none' ? signIn.flow.silent(purpose, session) : signIn.flow.start(purpose, session)
  }

  app.get<{ Params: { tenant: string } }>('/:tenant/oauth2/v2.0/authorize', async (request, reply) =>
    await send(reply, await authorize(request, new URLSearchParams(request.url.split('?')[1] ?? ''))))
  app.post<{ Params: { tenant: string } }>('/:tenant/oauth2/v2.0/authorize', async (request, reply) =>
    await send(reply, await authorize(request, new URLSearchParams((request.body ?? {}) as Record<string, string>))))

  app.post<{ Params: { tenant: string } }>('/:tenant/login', async (request, reply) =>
    await send(reply, signIn.flow.submit((request.body ?? {}) as Record<string, string>, request.correlationId)))

  app.get<{ Params: { tenant: string } }>('/:tenant/login', async (request, reply) =>
    await sendPage(reply, errorPage(new EntraError('invalid_request', 900561, 'The endpoint only accepts POST requests. Received a GET request.'), request.correlationId)))
}

function authorizePurpose (parsed: AuthorizeRequest, signIn: SignInState, correlationId: string): Purpose {
  return {
    segment: parsed.segment,
    tenant: parsed.tenant,
    app: parsed.app,
    resources: parsed.resources,
    demands: parsed.demands,
    ...(parsed.prompt === undefined ? {} : { prompt: parsed.prompt }),
    ...(parsed.loginHint === undefined ? {} : { loginHint: parsed.loginHint }),
    cancellable: false,
    complete: (signedIn: SignedIn): Reply => {
      const user: UserIdentity = { oid: signedIn.user.objectId, name: signedIn.user.name, username: signedIn.user.username, amr: signedIn.amr }
      const code = signIn.codes.issue({
        tenantId: parsed.tenant.id,
        clientId: parsed.app.clientId,
        redirectUri: parsed.redirectUri,
        redirectKind: parsed.redirectKind,
        scope: parsed.scope,
        user,
        authTime: signedIn.authTime,
        ...(parsed.codeChallenge === undefined ? {} : { codeChallenge: parsed.codeChallenge, codeChallengeMethod: parsed.codeChallengeMethod ?? 'plain' }),
        ...(parsed.nonce === undefined ? {} : { nonce: parsed.nonce }),
        ...(parsed.claims === undefined ? {} : { claims: parsed.claims })
      })
      const answer = replyTo(parsed, {
        code,
        ...(parsed.clientInfo ? { client_info: clientInfo(user.oid, parsed.tenant.id) } : {}),
        ...(signedIn.session === undefined ? {} : { session_state: signedIn.session.id })
      })
      return signedIn.session === undefined ? answer : { ...answer, cookie: signIn.sessions.setCookie(signedIn.session) }
    },
    cancel: (error: EntraError): Reply => errorReply(parsed, error, correlationId)
  }
}
