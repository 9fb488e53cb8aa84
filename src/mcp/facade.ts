import type { IdentityConfig, McpConfig } from '../config/types'
import { OAuthRequestError } from '../errors'
import { mcpResourceUrl } from './challenge'
import { redirectUriAllowed } from './redirect-uris'

const OIDC_SCOPES = new Set(['openid', 'profile', 'offline_access', 'email'])

/**
 * The authorization-server facade of one MCP route (DESIGN.md): RFC 8414 metadata, and the
 * rewriting its authorize and token endpoints do before Entra sees a request. It never issues a
 * token, holds no secret, and only ever asks Entra for the gateway's own scopes.
 */
export class McpAuthorizationFacade {
  readonly issuer: string
  readonly endpoints: { authorize: string, token: string, register: string }
  private readonly entra: { authorize: string, token: string, keys: string }

  constructor (readonly prefix: string, private readonly mcp: McpConfig, identity: Pick<IdentityConfig, 'instance' | 'tenantId'>) {
    this.issuer = mcpResourceUrl(prefix, mcp)
    // Below /oauth2, not below the prefix: every path below the prefix belongs to the MCP server.
    const base = `${mcp.publicUrl.origin}/oauth2${prefix}`
    this.endpoints = { authorize: `${base}/authorize`, token: `${base}/token`, register: `${base}/register` }
    const authority = `${identity.instance}/${identity.tenantId}`
    this.entra = { authorize: `${authority}/oauth2/v2.0/authorize`, token: `${authority}/oauth2/v2.0/token`, keys: `${authority}/discovery/v2.0/keys` }
  }

  get entraTokenEndpoint (): string {
    return this.entra.token
  }

  /** RFC 8414 authorization server metadata; `openid` adds what OpenID discovery requires. */
  metadata (openid: boolean): Record<string, unknown> {
    return {
      issuer: this.issuer,
      authorization_endpoint: this.endpoints.authorize,
      token_endpoint: this.endpoints.token,
      registration_endpoint: this.endpoints.register,
      scopes_supported: [...this.mcp.scopesSupported, 'openid', 'profile', 'offline_access'],
      response_types_supported: ['code'],
      response_modes_supported: ['query', 'fragment', 'form_post'],
      grant_types_supported: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_methods_supported: ['none'],
      code_challenge_methods_supported: ['S256'],
      ...(openid ? { jwks_uri: this.entra.keys, subject_types_supported: ['pairwise'], id_token_signing_alg_values_supported: ['RS256'] } : {})
    }
  }

  /**
   * Where the authorize endpoint sends the browser: Entra's /authorize with the same parameters,
   * `resource` removed and `scope` mapped, so Entra redirects straight back to the client.
   */
  authorizeRedirect (query: URLSearchParams): string {
    this.checkClient(query.get('client_id'), true)
    const redirectUri = query.get('redirect_uri')
    if (redirectUri === null || !redirectUriAllowed(this.mcp.redirectUris, redirectUri)) {
      throw new OAuthRequestError('redirect_uri is missing or not on this MCP route\'s allow-list (mcp.redirectUris)', 'invalid_redirect_uri')
    }
    // OAuth 2.1 and the MCP spec make PKCE mandatory; Entra would let a public client go without.
    if (query.get('code_challenge') === null || query.get('code_challenge_method') !== 'S256') {
      throw new OAuthRequestError('PKCE is required: send code_challenge with code_challenge_method=S256', 'invalid_request')
    }
    const params = this.forEntra(query, true)
    return `${this.entra.authorize}?${params.toString()}`
  }

  /** The token request as Entra gets it: the same form, `resource` removed and `scope` (when sent) mapped. */
  tokenForm (form: URLSearchParams): URLSearchParams {
    this.checkClient(form.get('client_id'), false)
    return this.forEntra(form, false)
  }

  /** RFC 7591 registration: always the route's pre-registered Entra public client. */
  register (body: unknown): Record<string, unknown> {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new OAuthRequestError('The registration request must be a JSON object', 'invalid_client_metadata')
    const metadata = body as Record<string, unknown>
    const uris = metadata.redirect_uris
    if (!Array.isArray(uris) || uris.length === 0 || !uris.every((u): u is string => typeof u === 'string')) {
      throw new OAuthRequestError('redirect_uris must be a non-empty list of URIs', 'invalid_redirect_uri')
    }
    const refused = uris.find((uri) => !redirectUriAllowed(this.mcp.redirectUris, uri))
    if (refused !== undefined) throw new OAuthRequestError(`The redirect URI ${refused} is not on this MCP route's allow-list (mcp.redirectUris)`, 'invalid_redirect_uri')
    return {
      client_id: this.mcp.clientId,
      client_id_issued_at: Math.floor(Date.now() / 1000),
      redirect_uris: uris,
      // A public client: Entra knows no secret for it, and the facade hands none out.
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      ...(typeof metadata.client_name === 'string' ? { client_name: metadata.client_name } : {}),
      scope: this.mcp.scopesSupported.join(' ')
    }
  }

  private checkClient (clientId: string | null, required: boolean): void {
    if (clientId === null && !required) return
    if (clientId?.toLowerCase() !== this.mcp.clientId) {
      throw new OAuthRequestError(`client_id must be ${this.mcp.clientId}, the client this MCP route's registration hands out`, 'invalid_client')
    }
  }

  private forEntra (input: URLSearchParams, authorize: boolean): URLSearchParams {
    const out = new URLSearchParams()
    for (const [name, value] of input) {
      if (name === 'resource') continue
      out.append(name, name === 'scope' ? this.mapScopes(value) : value)
    }
    if (authorize && !input.has('scope')) out.append('scope', this.mapScopes(''))
    return out
  }

  /**
   * A client names the gateway's scopes fully, by bare name, or below the MCP route's URL (RFC
   * 8707 style); Entra knows them only as `<gateway identifier URI>/<name>`. Scopes of any other
   * resource are refused: the facade signs users in for this route and nothing else.
   */
  mapScopes (scope: string): string {
    const requested = scope.split(' ').filter((s) => s !== '')
    const mapped = (requested.length === 0 ? this.mcp.scopesSupported : requested).map((s) => {
      if (OIDC_SCOPES.has(s.toLowerCase()) || s.startsWith(`${this.mcp.scopeResource}/`)) return s
      const resourceUrl = `${this.issuer}/`
      if (s.startsWith(resourceUrl) && !s.slice(resourceUrl.length).includes('/')) return `${this.mcp.scopeResource}/${s.slice(resourceUrl.length)}`
      if (!s.includes('/')) return `${this.mcp.scopeResource}/${s}`
      throw new OAuthRequestError(`The scope ${s} is not one of this MCP route's (${this.mcp.scopeResource})`, 'invalid_scope')
    })
    return [...new Set(mapped)].join(' ')
  }
}
