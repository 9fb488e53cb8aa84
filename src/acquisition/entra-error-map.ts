import {
  ConsentRequiredError, GatewayCredentialError, GatewayError, IdentityUnavailableError, InsufficientClaimsError, InvalidTokenError,
  TokenAcquisitionError
} from '../errors'
import { EntraUnavailableError } from './msal-network-client'

/** The fields msal-node's errors carry (they are not `instanceof` msal-common classes in v7). */
interface MsalErrorShape {
  errorCode?: string
  errorMessage?: string
  subError?: string
  claims?: string
  errorNo?: string
  status?: number
}

// The incoming assertion itself is bad: the client must get a new token, not retry.
const ASSERTION_REJECTED: Record<number, string> = {
  50013: 'Entra rejected the access token as an OBO assertion (invalid signature, issuer or lifetime)',
  500133: 'The access token expired before Entra could exchange it',
  500131: 'The access token was issued for another audience than this gateway',
  50027: 'Entra found the access token malformed',
  7000114: 'An app-only token cannot be exchanged on behalf of a user',
  240002: 'An ID token cannot be used as an access token'
}

// The user's session is over (revoked, password changed, expired): AADSTS50173, 50133, 50132, 700082.
const SESSION_ENDED = new Set([50173, 50133, 50132, 700082])

// Entra refused the gateway's own credential: 503 (DESIGN.md: the client cannot fix it, an operator must).
const CREDENTIAL_REJECTED: Record<number, string> = {
  7000215: 'Entra refused the gateway\'s client secret',
  7000222: 'The gateway\'s client secret has expired',
  7000218: 'The gateway sent no client credential',
  700027: 'Entra refused the gateway\'s certificate or federated assertion (unregistered key, bad signature or expired certificate)',
  700024: 'The gateway\'s client assertion is outside its valid time range',
  50048: 'The gateway\'s client assertion has a subject that differs from its issuer',
  5002738: 'The gateway\'s client assertion uses a signature algorithm Entra does not accept',
  70021: 'No federated identity credential of the gateway app matches its assertion',
  700211: 'No federated identity credential of the gateway app matches the assertion\'s issuer',
  700212: 'No federated identity credential of the gateway app matches the assertion\'s audience',
  700213: 'No federated identity credential of the gateway app matches the assertion\'s subject',
  700229: 'Only app-only tokens can be federated credentials for an Entra issuer',
  50166: 'Entra could not fetch the federated token issuer\'s OpenID metadata or keys'
}

// The gateway's registration or route configuration is wrong: 502, only an operator can fix it.
const GATEWAY_MISCONFIGURED: Record<number, string> = {
  70011: 'The downstream scopes configured for this route are not valid in Entra',
  700022: 'A route requests scopes of more than one downstream resource',
  1002012: 'A route\'s app scopes must be a single <resource>/.default for client credentials',
  700016: 'The gateway application is not registered in the caller\'s tenant',
  65002: 'Consent between the gateway and the downstream API is not configured'
}

const RETRY_AFTER_SECONDS = 30

/** What a failed msal-node call means for the client: the rows of DESIGN.md's table. */
export function mapEntraError (err: unknown, downstreamScopes: readonly string[]): GatewayError {
  if (err instanceof GatewayError) return err
  if (err instanceof EntraUnavailableError) {
    // Its message names the endpoint: the log's, not the client's.
    const unavailable = `Entra ID is unavailable (${err.reason === 'throttled' ? 'throttling' : err.reason.replace('_', ' ')}); retry later`
    return new IdentityUnavailableError(unavailable, err.retryAfterSeconds ?? RETRY_AFTER_SECONDS, `${unavailable}: ${err.errorMessage}`)
  }
  const e = (typeof err === 'object' && err !== null ? err : {}) as MsalErrorShape
  const aadsts = aadstsCode(e)
  const message = e.errorMessage ?? String(err)

  // Before the assertion codes: 50027 means a malformed *client* assertion when it comes as invalid_client.
  if (aadsts !== undefined && CREDENTIAL_REJECTED[aadsts] !== undefined) {
    return new GatewayCredentialError(`${CREDENTIAL_REJECTED[aadsts]} (AADSTS${aadsts})`, `AADSTS${aadsts}`)
  }
  if (e.errorCode === 'invalid_client') {
    return new GatewayCredentialError(`Entra refused the gateway's credential (${aadsts !== undefined ? `AADSTS${aadsts}` : 'invalid_client'})`, aadsts !== undefined ? `AADSTS${aadsts}` : e.errorCode)
  }

  if (aadsts === 65001 || e.subError === 'consent_required' || e.errorCode === 'consent_required') {
    return new ConsentRequiredError('The user has not consented to what this route needs downstream', downstreamScopes)
  }
  if (aadsts !== undefined && ASSERTION_REJECTED[aadsts] !== undefined) return new InvalidTokenError(ASSERTION_REJECTED[aadsts], 'rejected_by_entra')
  if (typeof e.claims === 'string' && e.claims.length > 0) {
    return new InsufficientClaimsError('Entra requires more from the user (MFA, conditional access) before this call', e.claims)
  }
  // Without claims, a revoked or ended session can only be fixed by a new sign-in.
  if (e.errorCode === 'interaction_required' || e.errorCode === 'login_required' || (aadsts !== undefined && SESSION_ENDED.has(aadsts))) {
    return new InvalidTokenError('Entra requires the user to sign in again', 'rejected_by_entra')
  }
  if (aadsts !== undefined && GATEWAY_MISCONFIGURED[aadsts] !== undefined) {
    return new TokenAcquisitionError(`${GATEWAY_MISCONFIGURED[aadsts]} (AADSTS${aadsts})`, `AADSTS${aadsts}`)
  }
  if (e.errorCode === 'unauthorized_client' || e.errorCode === 'invalid_scope') {
    return new TokenAcquisitionError(`Entra refused the gateway's request (${e.errorCode})`, aadsts !== undefined ? `AADSTS${aadsts}` : e.errorCode)
  }
  if (isUnavailable(e, aadsts)) {
    const unavailable = 'Entra ID is unavailable or throttling; retry later'
    return new IdentityUnavailableError(unavailable, RETRY_AFTER_SECONDS, `${unavailable}: ${e.errorCode ?? 'error'}: ${firstLine(message)}`)
  }
  return new TokenAcquisitionError(`Token acquisition failed: ${firstLine(message)}`, e.errorCode)
}

function aadstsCode (e: MsalErrorShape): number | undefined {
  if (e.errorNo !== undefined && /^\d+$/.test(e.errorNo)) return Number(e.errorNo)
  const match = /AADSTS(\d+)/.exec(e.errorMessage ?? '')
  return match?.[1] !== undefined ? Number(match[1]) : undefined
}

function isUnavailable (e: MsalErrorShape, aadsts: number | undefined): boolean {
  if (e.status !== undefined && (e.status === 429 || e.status >= 500)) return true
  if (aadsts === 50196) return true
  return ['temporarily_unavailable', 'network_error', 'server_error', 'endpoints_resolution_error',
    'openid_config_error', 'untrusted_authority', 'no_network_connectivity'].includes(e.errorCode ?? '')
}

function firstLine (text: string): string {
  return text.split(/\r?\n/)[0] ?? ''
}
