import { X509Certificate, createHash, createPublicKey } from 'node:crypto'
import { createDecoder, createVerifier } from 'fast-jwt'
import { request, type Dispatcher } from 'undici'
import { EntraError, entraInstant } from './entra-errors'
import type { Keyring } from './keyring'
import type { SeedApplication, SeedFederatedCredential, SeedTenant } from './seed-schema'
import type { Directory } from './directory'

export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
const WIF_DOCS = 'https://learn.microsoft.com/entra/workload-id/workload-identity-federation'
const JWKS_TTL_MS = 5 * 60_000

const decodeComplete = createDecoder({ complete: true })

export interface AssertionVerifierOptions {
  directory: Directory
  keyring: Keyring
  url: () => string
  /** Trusts the emulator's own CA, so it can fetch the discovery documents it hosts itself. */
  dispatcher: Dispatcher
}

interface Decoded { header: Record<string, unknown>, payload: Record<string, unknown> }
interface RegisteredCertificate { sha1: string, sha256: string, publicKeyPem: string, validToMs: number }

/**
 * Entra's checks on `client_assertion` (RFC 7523 private_key_jwt): a JWT the app signed with a
 * registered certificate (`iss` = `sub` = client id), or a token from a trusted issuer that one of
 * its federated identity credentials names (workload identity, managed identity as FIC).
 */
export class ClientAssertionVerifier {
  private readonly jwks = new Map<string, { keys: Array<Record<string, unknown>>, fetchedAt: number }>()

  constructor (private readonly options: AssertionVerifierOptions) {}

  /** Resolves when the assertion proves the app; throws Entra's refusal otherwise. */
  async verify (tenant: SeedTenant, app: SeedApplication, assertion: string, assertionType: string | undefined, segment: string): Promise<void> {
    if ((app.certificates ?? []).length === 0 && (app.federatedCredentials ?? []).length === 0) {
      throw new EntraError('invalid_client', 700027, `Client assertion failed signature validation. No certificate or federated credential is registered for app '${app.clientId}' in this emulator; use a client secret.`)
    }
    if (assertionType !== CLIENT_ASSERTION_TYPE) {
      throw new EntraError('invalid_request', 90014, `The request body must contain the following parameter: 'client_assertion_type' with the value '${CLIENT_ASSERTION_TYPE}'.`)
    }
    let decoded: Decoded
    try {
      decoded = decodeComplete(assertion) as Decoded
    } catch {
      throw new EntraError('invalid_client', 50027, 'Invalid JWT token. The client assertion is malformed.')
    }
    if (decoded.payload.iss === app.clientId) {
      await this.certificate(tenant, app, assertion, decoded, segment)
    } else {
      await this.federated(app, assertion, decoded)
    }
  }

  private async certificate (tenant: SeedTenant, app: SeedApplication, assertion: string, { header, payload }: Decoded, segment: string): Promise<void> {
    if (payload.sub !== app.clientId) {
      throw new EntraError('invalid_client', 50048, `Subject mismatches Issuer claim in the client assertion. Subject '${String(payload.sub)}', issuer '${String(payload.iss)}'.`)
    }
    const alg = String(header.alg)
    // RS256 goes with the SHA-1 thumbprint (`x5t`), PS256 with SHA-256 (`x5t#S256`): Entra's two documented forms.
    const thumbprint = alg === 'PS256' ? header['x5t#S256'] : alg === 'RS256' ? header.x5t : undefined
    if (alg !== 'PS256' && alg !== 'RS256') {
      throw new EntraError('invalid_client', 5002738, `Invalid JWT token. '${alg}' is not a supported signature algorithm.`)
    }
    if (typeof thumbprint !== 'string') {
      throw new EntraError('invalid_client', 700027, `Client assertion failed signature validation. [Reason - The ${alg === 'PS256' ? 'x5t#S256' : 'x5t'} header is missing.]`)
    }
    const certificate = registeredCertificates(app).find((c) => (alg === 'PS256' ? c.sha256 : c.sha1) === thumbprint)
    if (certificate === undefined) {
      throw new EntraError('invalid_client', 700027, `The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '${thumbprint}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '${app.clientId}'.]`)
    }
    if (certificate.validToMs < Date.now()) {
      throw new EntraError('invalid_client', 700027, `Client assertion failed signature validation. [Reason - The key used is expired., Thumbprint of key used by client: '${thumbprint}']`)
    }
    await verifySignature(assertion, certificate.publicKeyPem, alg, thumbprint)

    const base = this.options.url()
    const accepted = new Set([tenant.id, tenant.name, segment].flatMap((t) => [
      `${base}/${t}/oauth2/v2.0/token`, `${base}/${t}/oauth2/token`, `${base}/${t}/v2.0`
    ]).map((a) => a.toLowerCase()))
    const audiences = Array.isArray(payload.aud) ? payload.aud : [payload.aud]
    if (!audiences.some((a) => typeof a === 'string' && accepted.has(a.toLowerCase()))) {
      throw new EntraError('invalid_client', 50027, `Invalid JWT token. The client assertion's audience '${audiences.map(String).join(', ')}' is not this token endpoint (${base}/${tenant.id}/oauth2/v2.0/token).`)
    }
    checkLifetime(payload)
  }

  private async federated (app: SeedApplication, assertion: string, { header, payload }: Decoded): Promise<void> {
    const iss = String(payload.iss)
    const sub = String(payload.sub)
    const audiences = (Array.isArray(payload.aud) ? payload.aud : [payload.aud]).map(String)
    const records = (app.federatedCredentials ?? []).map((fic) => this.resolve(fic))
    if (records.length === 0) {
      throw new EntraError('invalid_client', 70021, `No matching federated identity record found for presented assertion. Assertion Issuer: '${iss}'. Assertion Subject: '${sub}'. Assertion Audience: '${audiences.join(', ')}'. ${WIF_DOCS}`)
    }
    // Exact, case-sensitive matching, as Entra does since 2024.
    const byIssuer = records.filter((r) => r.issuer === iss)
    if (byIssuer.length === 0) {
      throw new EntraError('invalid_client', 700211, `No matching federated identity record found for presented assertion issuer '${iss}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. ${WIF_DOCS}`)
    }
    const bySubject = byIssuer.filter((r) => r.subject === sub)
    if (bySubject.length === 0) {
      throw new EntraError('invalid_client', 700213, `No matching federated identity record found for presented assertion subject '${sub}'. Check your federated identity credential Subject, Audience and Issuer against the presented assertion. ${WIF_DOCS}`)
    }
    if (!bySubject.some((r) => r.audiences.some((a) => audiences.includes(a)))) {
      throw new EntraError('invalid_client', 700212, `No matching federated identity record found for presented assertion audience '${audiences.join(', ')}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. ${WIF_DOCS}`)
    }

    const entraTenant = this.options.directory.tenants.find((t) => `${this.options.url()}/${t.id}/v2.0` === iss)
    if (entraTenant !== undefined) {
      // A token this emulator issued (managed identity as FIC): its own keys, and only app-only tokens.
      try {
        await this.options.keyring.verifySignature(assertion)
      } catch {
        throw new EntraError('invalid_client', 700027, 'Client assertion failed signature validation. [Reason - The provided signature value did not match the expected signature value.]')
      }
      if (payload.idtyp !== 'app') {
        throw new EntraError('invalid_client', 700229, 'ForbiddenTokenType - Only app-only tokens can be used as Federated Identity Credentials for Microsoft Entra issuer.')
      }
    } else {
      const jwk = await this.issuerKey(iss, String(header.kid))
      await verifySignature(assertion, createPublicKey({ key: jwk as never, format: 'jwk' }).export({ format: 'pem', type: 'spki' }).toString(), String(header.alg), String(header.kid))
    }
    checkLifetime(payload)
  }

  private resolve (fic: SeedFederatedCredential): SeedFederatedCredential {
    return { ...fic, issuer: fic.issuer.replace('{emulator}', this.options.url()) }
  }

  /** The issuer's key by kid, through OIDC discovery; refetched once when the kid is unknown (rollover). */
  private async issuerKey (issuer: string, kid: string): Promise<Record<string, unknown>> {
    const cached = this.jwks.get(issuer)
    const fresh = cached !== undefined && Date.now() - cached.fetchedAt < JWKS_TTL_MS
    let key = fresh ? cached.keys.find((k) => k.kid === kid) : undefined
    if (key === undefined) {
      const keys = await this.fetchKeys(issuer)
      this.jwks.set(issuer, { keys, fetchedAt: Date.now() })
      key = keys.find((k) => k.kid === kid)
    }
    if (key === undefined) {
      throw new EntraError('invalid_client', 700027, `Client assertion failed signature validation. [Reason - The key was not found., Thumbprint of key used by client: '${kid}']`)
    }
    return key
  }

  private async fetchKeys (issuer: string): Promise<Array<Record<string, unknown>>> {
    const failed = (why: string): EntraError =>
      new EntraError('invalid_client', 50166, `Request to External OIDC endpoint failed. Issuer '${issuer}': ${why}.`)
    const getJson = async (url: string): Promise<Record<string, unknown>> => {
      let res
      try {
        res = await request(url, { dispatcher: this.options.dispatcher, headersTimeout: 5_000, bodyTimeout: 5_000 })
      } catch (err) {
        throw failed(`GET ${url} failed (${(err as Error).message})`)
      }
      if (res.statusCode !== 200) {
        await res.body.dump()
        throw failed(`GET ${url} answered HTTP ${res.statusCode}`)
      }
      try {
        return await res.body.json() as Record<string, unknown>
      } catch {
        throw failed(`GET ${url} did not answer JSON`)
      }
    }
    const discovery = await getJson(`${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`)
    if (discovery.issuer !== issuer) throw failed(`the discovery document names issuer '${String(discovery.issuer)}'`)
    if (typeof discovery.jwks_uri !== 'string') throw failed('the discovery document has no jwks_uri')
    const jwks = await getJson(discovery.jwks_uri)
    return Array.isArray(jwks.keys) ? jwks.keys as Array<Record<string, unknown>> : []
  }
}

/** Entra's keyCredentials, as the thumbprints assertions name them (base64url, like `x5t`/`x5t#S256`). */
function registeredCertificates (app: SeedApplication): RegisteredCertificate[] {
  return (app.certificates ?? []).map((pem) => {
    const cert = new X509Certificate(pem)
    return {
      sha1: createHash('sha1').update(cert.raw).digest('base64url'),
      sha256: createHash('sha256').update(cert.raw).digest('base64url'),
      publicKeyPem: cert.publicKey.export({ format: 'pem', type: 'spki' }).toString(),
      validToMs: Date.parse(cert.validTo)
    }
  })
}

async function verifySignature (assertion: string, publicKeyPem: string, alg: string, keyName: string): Promise<void> {
  if (alg !== 'RS256' && alg !== 'PS256') {
    throw new EntraError('invalid_client', 5002738, `Invalid JWT token. '${alg}' is not a supported signature algorithm.`)
  }
  try {
    // Lifetime is checked separately: Entra reports it with its own code (700024).
    createVerifier({ key: publicKeyPem, algorithms: [alg], ignoreExpiration: true, ignoreNotBefore: true, cache: false })(assertion)
  } catch {
    throw new EntraError('invalid_client', 700027, `Client assertion failed signature validation. [Reason - The provided signature value did not match the expected signature value., Thumbprint of key used by client: '${keyName}']`)
  }
}

/**
 * Entra tolerates clock skew on client assertions; it has to, since msal-node rounds `nbf` to the
 * nearest second (Math.round), so a fresh assertion is often "valid from" half a second from now.
 */
const ASSERTION_CLOCK_SKEW_MS = 300_000

function checkLifetime (payload: Record<string, unknown>): void {
  const now = Date.now()
  const exp = typeof payload.exp === 'number' ? payload.exp * 1000 : 0
  const nbf = typeof payload.nbf === 'number' ? payload.nbf * 1000 : 0
  if (exp + ASSERTION_CLOCK_SKEW_MS <= now || nbf - ASSERTION_CLOCK_SKEW_MS > now) {
    throw new EntraError('invalid_client', 700024, `Client assertion is not within its valid time range. Current time: ${entraInstant(now)}, assertion valid from ${entraInstant(nbf)}, expiry time of assertion ${entraInstant(exp)}. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .`)
  }
}
