import { createHash, generateKeyPair as generateKeyPairCb, type KeyObject } from 'node:crypto'
import { promisify } from 'node:util'
import type { FastifyInstance } from 'fastify'
import { createSigner } from 'fast-jwt'

const generateKeyPair = promisify(generateKeyPairCb)

export interface ServiceAccountTokenRequest {
  /** e.g. system:serviceaccount:<namespace>:<name> */
  subject: string
  /** default api://AzureADTokenExchange, the audience Entra recommends for federated credentials */
  audience?: string
  /** default 3600 */
  lifetimeSeconds?: number
  /** Which hosted issuer signs; default the first one. */
  issuer?: string
  /** Seconds to shift iat/nbf/exp by (negative = in the past), for expired-token tests. */
  offsetSeconds?: number
  /** Sign with a key the issuer does not publish (a forged token). */
  foreignKey?: boolean
}

interface IssuerKeys { kid: string, privateKey: KeyObject, jwk: Record<string, unknown> }

/**
 * Kubernetes-style OIDC issuers (what an AKS cluster's service account issuer publishes): discovery
 * at `<issuer>/.well-known/openid-configuration` and keys at `<issuer>/openid/v1/jwks`. The emulator's
 * federated credential check fetches them over HTTPS like Entra does, so tests exercise discovery.
 */
export class WorkloadIssuers {
  private constructor (private readonly keys: Map<string, IssuerKeys>, private readonly foreign: IssuerKeys, private readonly url: () => string) {}

  static async create (names: readonly string[], url: () => string): Promise<WorkloadIssuers> {
    const entries = await Promise.all(names.map(async (name) => [name, await issuerKeys()] as const))
    return new WorkloadIssuers(new Map(entries), await issuerKeys(), url)
  }

  names (): string[] {
    return [...this.keys.keys()]
  }

  issuerUrl (name: string): string {
    if (!this.keys.has(name)) throw new Error(`no workload issuer '${name}' in this emulator (seed workloadIssuers: [${this.names().join(', ')}])`)
    return `${this.url()}/k8s/${name}`
  }

  mint (request: ServiceAccountTokenRequest): string {
    const name = request.issuer ?? this.names()[0]
    if (name === undefined) throw new Error('this emulator hosts no workload issuer (seed workloadIssuers)')
    const issuer = this.issuerUrl(name)
    const keys = request.foreignKey === true ? this.foreign : this.keys.get(name) as IssuerKeys
    const now = Math.floor(Date.now() / 1000) + (request.offsetSeconds ?? 0)
    const [, namespace = 'default', account = 'default'] = /^system:serviceaccount:([^:]+):(.+)$/.exec(request.subject) ?? []
    const sign = createSigner({ key: keys.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), algorithm: 'RS256', kid: keys.kid, noTimestamp: true })
    return sign({
      aud: [request.audience ?? 'api://AzureADTokenExchange'],
      exp: now + (request.lifetimeSeconds ?? 3600),
      iat: now,
      iss: issuer,
      nbf: now,
      sub: request.subject,
      'kubernetes.io': { namespace, serviceaccount: { name: account, uid: createHash('sha256').update(request.subject).digest('hex').slice(0, 32) } }
    })
  }

  register (app: FastifyInstance): void {
    app.get<{ Params: { name: string } }>('/k8s/:name/.well-known/openid-configuration', async (request, reply) => {
      if (!this.keys.has(request.params.name)) return await reply.callNotFound()
      const issuer = this.issuerUrl(request.params.name)
      return {
        issuer,
        jwks_uri: `${issuer}/openid/v1/jwks`,
        response_types_supported: ['id_token'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256']
      }
    })
    app.get<{ Params: { name: string } }>('/k8s/:name/openid/v1/jwks', async (request, reply) => {
      const keys = this.keys.get(request.params.name)
      if (keys === undefined) return await reply.callNotFound()
      return { keys: [keys.jwk] }
    })
  }
}

async function issuerKeys (): Promise<IssuerKeys> {
  const { privateKey, publicKey } = await generateKeyPair('rsa', { modulusLength: 2048 })
  const jwk = publicKey.export({ format: 'jwk' }) as Record<string, unknown>
  const kid = createHash('sha256').update(String(jwk.n)).digest('base64url').slice(0, 43)
  return { kid, privateKey, jwk: { ...jwk, kid, use: 'sig', alg: 'RS256' } }
}
