import { createSigner, createVerifier } from 'fast-jwt'
import type { SeedTenant } from './seed-schema'
import { createSigningKeys, type SigningKey } from './signing-keys'

type Sign = (payload: Record<string, unknown>) => string

/** Entra always publishes a key: retiring a tenant's only one is refused. */
export class LastKeyError extends Error {
  override name = 'LastKeyError'
  constructor (readonly tenantId: string) {
    super(`the signing key is tenant ${tenantId}'s only key; publish another one before retiring it`)
  }
}

interface TenantKeys {
  keys: SigningKey[]
  /** v2 tokens carry only `kid`; v1 tokens carry `x5t` as well (Entra's documented difference). */
  signV2: Sign
  signV1: Sign
}

/** Every tenant's signing keys, and the one verifier that accepts a token any of them signed. */
export class Keyring {
  private constructor (private readonly byTenant: Map<string, TenantKeys>) {}

  static async create (tenants: readonly SeedTenant[]): Promise<Keyring> {
    // All keys at once: RSA generation runs on libuv's pool, so the tenants overlap.
    const generated = await Promise.all(tenants.map(async (tenant) => [tenant.id, await createSigningKeys()] as const))
    return new Keyring(new Map(generated.map(([tenantId, keys]) => [tenantId, tenantKeys(keys)])))
  }

  /**
   * Signing key rollover as Entra does it, without warning: a new key is published and signs from
   * now on, and the key that signed until now disappears from the JWKS. Returns the new key's kid.
   */
  async rotate (tenantId: string): Promise<string> {
    const previous = signingKeyOf(this.tenantKeys(tenantId).keys)
    const kid = await this.publish(tenantId)
    this.retire(tenantId, previous.kid)
    return kid
  }

  /** An announced rollover's first half: a new key signs from now on, the others stay published. Returns its kid. */
  async publish (tenantId: string): Promise<string> {
    const current = this.tenantKeys(tenantId)
    const [fresh] = await createSigningKeys(1)
    if (fresh === undefined) throw new Error('no key generated')
    this.byTenant.set(tenantId, tenantKeys([fresh, ...current.keys]))
    return fresh.kid
  }

  /**
   * Withdraws a key from the JWKS; tokens it signed no longer verify. When it was the signing key,
   * the next published one signs. False when the tenant has no such key; a tenant's last key stays.
   */
  retire (tenantId: string, kid: string): boolean {
    const current = this.tenantKeys(tenantId)
    if (!current.keys.some((k) => k.kid === kid)) return false
    if (current.keys.length === 1) throw new LastKeyError(tenantId)
    this.byTenant.set(tenantId, tenantKeys(current.keys.filter((k) => k.kid !== kid)))
    return true
  }

  keys (tenantId: string): SigningKey[] {
    return this.tenantKeys(tenantId).keys
  }

  allKeys (): SigningKey[] {
    return [...this.byTenant.values()].flatMap((t) => t.keys)
  }

  keyById (kid: string): SigningKey | undefined {
    return this.allKeys().find((k) => k.kid === kid)
  }

  sign (tenantId: string, payload: Record<string, unknown>, version: 1 | 2): string {
    const keys = this.tenantKeys(tenantId)
    return version === 1 ? keys.signV1(payload) : keys.signV2(payload)
  }

  /** For tests' odd tokens: nothing is added to the payload, the header may override anything. */
  signRaw (tenantId: string, payload: Record<string, unknown>, header: Record<string, unknown> = {}): string {
    const current = signingKeyOf(this.tenantKeys(tenantId).keys)
    const sign = createSigner({
      key: current.privateKeyPem,
      algorithm: 'RS256',
      kid: current.kid,
      noTimestamp: payload.iat === undefined,
      header: { alg: 'RS256', ...header }
    })
    return sign(payload)
  }

  /**
   * Checks the signature only: the grants decide what an expired or foreign token means, each with
   * its own AADSTS code. Throws fast-jwt's TokenError (its `code` says why).
   */
  readonly verifySignature = createVerifier({
    algorithms: ['RS256'],
    ignoreExpiration: true,
    ignoreNotBefore: true,
    cache: false,
    key: async ({ header }: { header: Record<string, unknown> }) => {
      const key = this.keyById(String(header.kid))
      if (key === undefined) throw new Error(`no signing key with kid '${String(header.kid)}'`)
      return key.publicKeyPem
    }
  })

  private tenantKeys (tenantId: string): TenantKeys {
    const keys = this.byTenant.get(tenantId)
    if (keys === undefined) throw new Error(`no tenant '${tenantId}' in this emulator`)
    return keys
  }
}

function tenantKeys (keys: SigningKey[]): TenantKeys {
  const current = signingKeyOf(keys)
  return {
    keys,
    signV2: createSigner({ key: current.privateKeyPem, algorithm: 'RS256', kid: current.kid }),
    signV1: createSigner({ key: current.privateKeyPem, algorithm: 'RS256', kid: current.kid, header: { alg: 'RS256', x5t: current.kid } })
  }
}

function signingKeyOf (keys: SigningKey[]): SigningKey {
  const first = keys[0]
  if (first === undefined) throw new Error('a tenant needs at least one signing key')
  return first
}
