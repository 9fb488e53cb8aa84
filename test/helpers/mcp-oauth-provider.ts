import type { OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js'
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js'

/**
 * An MCP client's OAuth state kept in memory, as the SDK's own examples keep it. Instead of opening
 * a browser, `redirectToAuthorization` remembers the URL (and `onRedirect` may drive it).
 */
export class InMemoryOAuthProvider implements OAuthClientProvider {
  authorizationUrl: URL | undefined
  client: OAuthClientInformationMixed | undefined
  saved: OAuthTokens | undefined
  private verifier = ''

  constructor (readonly redirectUrl: string, private readonly onRedirect?: (url: URL) => Promise<void>) {}

  get clientMetadata (): OAuthClientMetadata {
    return { client_name: 'obo-gateway test client', redirect_uris: [this.redirectUrl], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none' }
  }

  state (): string { return 'state-123' }
  clientInformation (): OAuthClientInformationMixed | undefined { return this.client }
  saveClientInformation (info: OAuthClientInformationMixed): void { this.client = info }
  tokens (): OAuthTokens | undefined { return this.saved }
  saveTokens (tokens: OAuthTokens): void { this.saved = tokens }
  saveCodeVerifier (verifier: string): void { this.verifier = verifier }
  codeVerifier (): string { return this.verifier }
  async redirectToAuthorization (url: URL): Promise<void> {
    this.authorizationUrl = url
    await this.onRedirect?.(url)
  }
}
