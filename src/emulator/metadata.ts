import type { FastifyInstance } from 'fastify'
import { MULTI_TENANT_SEGMENTS, type Directory } from './directory'
import { tenantNotFound } from './entra-errors'
import type { Keyring } from './keyring'
import { v1Issuer, v2Issuer } from './tokens'

export interface MetadataDependencies {
  directory: Directory
  keyring: Keyring
  url: () => string
  /** Called with the tenant GUID (or common/organizations) of every JWKS request. */
  recordJwksFetch: (segment: string) => void
}

interface TenantView {
  /** What the endpoints name: the tenant GUID, or `common`/`organizations` as asked (like Entra). */
  segment: string
  /** The issuer's tenant part: the GUID, or the `{tenantid}` template for multi-tenant metadata. */
  issuerTenant: string
  /** Tenant GUIDs whose keys this view publishes. */
  tenantIds: string[]
}

const TEMPLATE = '{tenantid}'

/** The metadata and key documents, what browsers read too (see cors.ts). */
export const METADATA_PATHS = {
  v2: '/:tenant/v2.0/.well-known/openid-configuration',
  v1: '/:tenant/.well-known/openid-configuration',
  keysV2: '/:tenant/discovery/v2.0/keys',
  keysV1: '/:tenant/discovery/keys'
} as const

/** OpenID metadata (v1 and v2) and the JWKS, per tenant or for common/organizations. */
export function registerMetadata (app: FastifyInstance, deps: MetadataDependencies): void {
  const view = (segment: string): TenantView => {
    const multi = segment.toLowerCase()
    if (MULTI_TENANT_SEGMENTS.has(multi)) {
      return { segment: multi, issuerTenant: TEMPLATE, tenantIds: deps.directory.tenants.map((t) => t.id) }
    }
    const tenant = deps.directory.tenant(segment)
    if (tenant === undefined) throw tenantNotFound(segment)
    return { segment: tenant.id, issuerTenant: tenant.id, tenantIds: [tenant.id] }
  }

  app.get<{ Params: { tenant: string } }>(METADATA_PATHS.v2, async (request) => {
    const t = view(request.params.tenant)
    const base = `${deps.url()}/${t.segment}`
    return {
      token_endpoint: `${base}/oauth2/v2.0/token`,
      token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
      jwks_uri: `${base}/discovery/v2.0/keys`,
      response_modes_supported: ['query', 'fragment', 'form_post'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: ['RS256'],
      response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      issuer: v2Issuer(deps.url(), t.issuerTenant),
      request_uri_parameter_supported: false,
      authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
      device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
      http_logout_supported: true,
      frontchannel_logout_supported: true,
      end_session_endpoint: `${base}/oauth2/v2.0/logout`,
      claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'auth_time', 'acr', 'nonce', 'preferred_username', 'name', 'tid', 'ver', 'at_hash', 'c_hash', 'email'],
      tenant_region_scope: null
    }
  })

  app.get<{ Params: { tenant: string } }>(METADATA_PATHS.v1, async (request) => {
    const t = view(request.params.tenant)
    const base = `${deps.url()}/${t.segment}`
    return {
      token_endpoint: `${base}/oauth2/token`,
      token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
      jwks_uri: `${base}/discovery/keys`,
      response_modes_supported: ['query', 'fragment', 'form_post'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: ['RS256'],
      response_types_supported: ['code', 'id_token', 'code id_token', 'token id_token', 'token'],
      scopes_supported: ['openid'],
      issuer: v1Issuer(t.issuerTenant),
      microsoft_multi_refresh_token: true,
      authorization_endpoint: `${base}/oauth2/authorize`,
      http_logout_supported: true,
      frontchannel_logout_supported: true,
      end_session_endpoint: `${base}/oauth2/logout`,
      claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'auth_time', 'acr', 'amr', 'nonce', 'email', 'given_name', 'family_name', 'nickname'],
      tenant_region_scope: null
    }
  })

  const jwks = async (request: { params: { tenant: string } }): Promise<{ keys: unknown[] }> => {
    const t = view(request.params.tenant)
    deps.recordJwksFetch(t.segment)
    const issuer = v2Issuer(deps.url(), TEMPLATE)
    return {
      keys: t.tenantIds.flatMap((id) => deps.keyring.keys(id)).map((key) => ({
        kty: 'RSA',
        use: 'sig',
        kid: key.kid,
        x5t: key.kid,
        n: key.n,
        e: key.e,
        x5c: [key.certificate],
        issuer
      }))
    }
  }
  app.get<{ Params: { tenant: string } }>(METADATA_PATHS.keysV2, jwks)
  // The v1 metadata points here; Entra serves the same keys on both paths.
  app.get<{ Params: { tenant: string } }>(METADATA_PATHS.keysV1, jwks)
}
