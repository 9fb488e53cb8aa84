import type { FastifyInstance } from 'fastify'
import { MULTI_TENANT_SEGMENTS, type Directory } from '../directory'
import { EntraError, missingParameter, tenantNotFound } from '../entra-errors'
import type { SeedTenant } from '../seed-schema'
import { resourceScopes } from './authorize-request'
import { signInClaims } from './claims'
import { DEVICE_CODE_INTERVAL_SECONDS, DEVICE_CODE_LIFETIME_SECONDS, type DeviceAuthorization } from './device-codes'
import type { Purpose, Reply, SignedIn } from './flow'
import { deviceCodePage, deviceDonePage } from './pages'
import { send, sendPage } from './replies'
import type { SignInState } from './state'

export interface DeviceCodeDependencies {
  directory: Directory
  signIn: SignInState
  url: () => string
}

/** The page `verification_uri` names: one for every tenant, since the user code says which request it is. */
export const DEVICE_PAGE_PATH = '/common/oauth2/deviceauth'

/**
 * The device authorization grant (RFC 8628) as Entra runs it: /devicecode hands out the codes, the
 * "Enter code" page takes the user code and continues with the usual sign-in steps, the token
 * endpoint's polling (grants/device-code.ts) answers once the user got through them.
 */
export function registerDeviceCode (app: FastifyInstance, deps: DeviceCodeDependencies): void {
  const { signIn } = deps
  app.post<{ Params: { tenant: string } }>('/:tenant/oauth2/v2.0/devicecode', async (request) => {
    const params = (request.body ?? {}) as Record<string, string>
    const clientId = params.client_id ?? ''
    if (clientId === '') throw missingParameter('client_id')
    const segment = request.params.tenant
    const multi = MULTI_TENANT_SEGMENTS.has(segment.toLowerCase())
    const named = multi ? undefined : deps.directory.tenant(segment)
    if (!multi && named === undefined) throw tenantNotFound(segment)
    const tenant: SeedTenant | undefined = named ?? deps.directory.tenants.find((t) => deps.directory.application(t, clientId) !== undefined)
    const app = tenant === undefined ? undefined : deps.directory.application(tenant, clientId)
    if (tenant === undefined || app === undefined) {
      throw new EntraError('unauthorized_client', 700016, `Application with identifier '${clientId}' was not found in the directory '${named?.name ?? segment}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`)
    }
    const scope = params.scope ?? ''
    if (scope.trim() === '') throw missingParameter('scope')
    resourceScopes(deps.directory, tenant, scope, app)
    signInClaims(params.claims)
    const authorization = signIn.deviceCodes.issue({ tenantId: tenant.id, clientId, scope, ...(params.claims === undefined ? {} : { claims: params.claims }) })
    const verificationUri = `${deps.url()}${DEVICE_PAGE_PATH}`
    return {
      user_code: authorization.userCode,
      device_code: authorization.deviceCode,
      verification_uri: verificationUri,
      expires_in: DEVICE_CODE_LIFETIME_SECONDS,
      interval: DEVICE_CODE_INTERVAL_SECONDS,
      message: `To sign in, use a web browser to open the page ${verificationUri} and enter the code ${authorization.userCode} to authenticate.`
    }
  })

  app.get<{ Params: { tenant: string } }>('/:tenant/oauth2/deviceauth', async (request, reply) =>
    await sendPage(reply, deviceCodePage(`/${request.params.tenant}/oauth2/deviceauth`)))

  app.post<{ Params: { tenant: string } }>('/:tenant/oauth2/deviceauth', async (request, reply) => {
    const form = (request.body ?? {}) as Record<string, string>
    const authorization = signIn.deviceCodes.pendingByUserCode(form.otc ?? '')
    if (authorization === undefined) {
      return await sendPage(reply, deviceCodePage(`/${request.params.tenant}/oauth2/deviceauth`,
        'That code didn\'t work. Check the code and try again. (AADSTS70018: Invalid verification code due to the user typing in a wrong user code.)'))
    }
    return await send(reply, signIn.flow.start(devicePurpose(deps, authorization), signIn.sessions.fromCookieHeader(request.headers.cookie)))
  })
}

function devicePurpose (deps: DeviceCodeDependencies, authorization: DeviceAuthorization): Purpose {
  const tenant = deps.directory.tenant(authorization.tenantId) as SeedTenant
  const app = deps.directory.application(tenant, authorization.clientId)
  if (app === undefined) throw new EntraError('unauthorized_client', 700016, `Application with identifier '${authorization.clientId}' was not found in the directory '${tenant.name}'.`)
  const { signIn } = deps
  const done = (approved: boolean, signedIn?: SignedIn): Reply => {
    const page: Reply = { kind: 'page', page: deviceDonePage(app.displayName, approved) }
    return signedIn?.session === undefined ? page : { ...page, cookie: signIn.sessions.setCookie(signedIn.session) }
  }
  return {
    segment: tenant.id,
    tenant,
    app,
    resources: resourceScopes(deps.directory, tenant, authorization.scope, app),
    demands: signInClaims(authorization.claims),
    cancellable: true,
    complete: (signedIn) => {
      signIn.deviceCodes.approve(authorization, {
        user: { oid: signedIn.user.objectId, name: signedIn.user.name, username: signedIn.user.username, amr: signedIn.amr },
        authTime: signedIn.authTime
      })
      return done(true, signedIn)
    },
    cancel: () => {
      signIn.deviceCodes.decline(authorization)
      return done(false)
    }
  }
}
