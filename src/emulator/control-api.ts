import type { FastifyError, FastifyInstance } from 'fastify'
import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { ControlError, type EmulatorControls } from './controls'
import type { Directory } from './directory'
import { mfaPolicyIssue, schemaIssues } from './seed'
import { ConsentSchema, FailureRuleSchema, MfaPolicySchema, type FailureRule, type MfaPolicy } from './seed-schema'
import type { SignInControls } from './signin/controls'

/**
 * The control API: the in-process handle's controls over HTTP under `/_emulator/`, for docker
 * compose users and test suites in other languages. One table; `GET /_emulator/` lists it, so a
 * new call is one more row.
 */
export const CONTROL_PREFIX = '/_emulator'

export interface ControlContext {
  controls: EmulatorControls & SignInControls
  directory: Directory
}

export interface ControlRequest {
  params: Record<string, string>
  /** The JSON body (any content type), undefined when there is none. */
  body: unknown
}

export interface ControlAnswer {
  status: 200 | 201 | 204
  body?: unknown
}

export interface ControlRoute {
  method: 'GET' | 'POST' | 'DELETE'
  /** Below /_emulator, placeholders written `{name}` as the README shows them. */
  path: string
  description: string
  handle: (request: ControlRequest, context: ControlContext) => ControlAnswer | Promise<ControlAnswer>
}

const STATUS: Record<ControlError['kind'], number> = { invalid_request: 400, not_found: 404, conflict: 409 }

function bodyAs<T> (schema: TSchema, body: unknown, what: string): T {
  if (body === undefined) throw new ControlError('invalid_request', `the body must be ${what} (JSON)`)
  const issues = schemaIssues(schema, body)
  if (issues.length > 0) throw new ControlError('invalid_request', `not ${what}: ${issues.join('; ')}`)
  return body as T
}

/** A seed `consents` entry, plus the tenant (default: the one that has the resource). */
const ConsentBodySchema = Type.Object({ ...ConsentSchema.properties, tenantId: Type.Optional(Type.String({ minLength: 1 })) }, { additionalProperties: false })
type ConsentBody = Static<typeof ConsentBodySchema>

function removed (found: boolean, what: string, id: string): ControlAnswer {
  if (!found) throw new ControlError('not_found', `no active ${what} with id '${id}'`)
  return { status: 204 }
}

export const CONTROL_ROUTES: ControlRoute[] = [
  {
    method: 'GET',
    path: '/token-requests',
    description: 'token request counts by grant, client and user',
    handle: (_request, { controls }) => ({ status: 200, body: controls.records.tokenRequestCounts() })
  },
  {
    method: 'POST',
    path: '/tenants/{tenantId}/users/{objectId}/revoke-sessions',
    description: 'revoke the user\'s sessions: OBO with older tokens fails with AADSTS50173; answers the revocation time (seconds)',
    handle: ({ params }, { controls }) => ({
      status: 200,
      body: { revocationTime: controls.sessions.revoke(params.tenantId ?? '', params.objectId ?? '') }
    })
  },
  {
    method: 'POST',
    path: '/mfa-policies',
    description: 'add an MFA policy (body: a seed mfaPolicies entry); answers its id, policyId and claims',
    handle: ({ body }, { controls, directory }) => {
      const policy = bodyAs<MfaPolicy>(MfaPolicySchema, body, 'an MFA policy')
      const issue = mfaPolicyIssue(directory, policy)
      if (issue !== undefined) throw new ControlError('invalid_request', issue)
      const handle = controls.mfa.require(policy)
      return { status: 201, body: { id: handle.id, policyId: handle.policyId, claims: handle.claims } }
    }
  },
  {
    method: 'DELETE',
    path: '/mfa-policies',
    description: 'remove every MFA policy',
    handle: (_request, { controls }) => { controls.mfa.clear(); return { status: 204 } }
  },
  {
    method: 'DELETE',
    path: '/mfa-policies/{id}',
    description: 'remove one MFA policy',
    handle: ({ params }, { controls }) => removed(controls.mfa.remove(params.id ?? ''), 'MFA policy', params.id ?? '')
  },
  {
    method: 'POST',
    path: '/failures',
    description: 'add a token endpoint failure rule (body: a seed failures entry); answers its id',
    handle: ({ body }, { controls }) => ({ status: 201, body: { id: controls.failures.inject(bodyAs<FailureRule>(FailureRuleSchema, body, 'a failure rule')).id } })
  },
  {
    method: 'DELETE',
    path: '/failures',
    description: 'remove every failure rule',
    handle: (_request, { controls }) => { controls.failures.clear(); return { status: 204 } }
  },
  {
    method: 'DELETE',
    path: '/failures/{id}',
    description: 'remove one failure rule',
    handle: ({ params }, { controls }) => removed(controls.failures.remove(params.id ?? ''), 'failure rule', params.id ?? '')
  },
  {
    method: 'POST',
    path: '/consents',
    description: 'grant consent (body: a seed consents entry, optionally with tenantId; no userObjectId = admin consent for all users); answers its id',
    handle: ({ body }, { controls, directory }) => {
      const { tenantId, ...consent } = bodyAs<ConsentBody>(ConsentBodySchema, body, 'a consent grant')
      const tenant = tenantId ?? directory.tenants.find((t) => directory.resource(t, consent.resource) !== undefined)?.id
      if (tenant === undefined) throw new ControlError('not_found', `no tenant has an application '${consent.resource}'`)
      return { status: 201, body: { id: controls.consents.grant(tenant, consent) } }
    }
  },
  {
    method: 'DELETE',
    path: '/consents',
    description: 'withdraw every consent grant, the seed\'s included',
    handle: (_request, { controls }) => { controls.consents.clear(); return { status: 204 } }
  },
  {
    method: 'DELETE',
    path: '/consents/{id}',
    description: 'withdraw one consent grant (the consent page\'s too)',
    handle: ({ params }, { controls }) => removed(controls.consents.revoke(params.id ?? ''), 'consent grant', params.id ?? '')
  },
  {
    method: 'POST',
    path: '/tenants/{tenantId}/keys',
    description: 'publish a new signing key that signs from now on (the others stay published); answers its kid',
    handle: async ({ params }, { controls }) => ({ status: 201, body: { kid: await controls.keys.publish(params.tenantId ?? '') } })
  },
  {
    method: 'DELETE',
    path: '/tenants/{tenantId}/keys/{kid}',
    description: 'retire a signing key: it leaves the JWKS and tokens it signed stop verifying',
    handle: ({ params }, { controls }) => { controls.keys.retire(params.tenantId ?? '', params.kid ?? ''); return { status: 204 } }
  }
]

export function registerControlApi (app: FastifyInstance, context: ControlContext, routes: readonly ControlRoute[] = CONTROL_ROUTES): void {
  app.register(async (api) => {
    // Bodies are JSON whatever the content type says (curl -d sends a form type).
    api.removeAllContentTypeParsers()
    api.addContentTypeParser('*', { parseAs: 'string' }, (_request, text, done) => {
      if ((text as string).trim() === '') { done(null, undefined); return }
      try {
        done(null, JSON.parse(text as string))
      } catch (err) {
        done(new ControlError('invalid_request', `the body is not JSON: ${(err as Error).message}`), undefined)
      }
    })
    api.setErrorHandler<FastifyError | ControlError>(async (err, request, reply) => {
      if (err instanceof ControlError) return await reply.code(STATUS[err.kind]).send({ error: err.kind, error_description: err.message })
      const status = err.statusCode ?? 500
      if (status >= 500) request.log.error(err)
      return await reply.code(status < 500 ? 400 : 500).send({ error: status < 500 ? 'invalid_request' : 'server_error', error_description: status < 500 ? err.message : 'the control call failed' })
    })

    api.get('/', async () => ({
      calls: [{ method: 'GET', path: `${CONTROL_PREFIX}/`, description: 'this list' }, ...routes.map((r) => ({ method: r.method, path: `${CONTROL_PREFIX}${r.path}`, description: r.description }))]
    }))
    for (const route of routes) {
      api.route({
        method: route.method,
        url: route.path.replace(/\{(\w+)\}/g, ':$1'),
        handler: async (request, reply) => {
          const answer = await route.handle({ params: request.params as Record<string, string>, body: request.body }, context)
          return await reply.code(answer.status).send(answer.body)
        }
      })
    }
  }, { prefix: CONTROL_PREFIX })
}
