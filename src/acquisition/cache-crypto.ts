import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto'

const VERSION = 'v1'
const IV_BYTES = 12
const TAG_BYTES = 16
const SALT = Buffer.from('obo-gateway token cache', 'utf8')

interface DerivedKey { id: string, key: Buffer }

/** Why a stored value could not be read; every case is a cache miss for the caller. */
export class CacheDecryptError extends Error {
  override name = 'CacheDecryptError'
  constructor (readonly reason: 'malformed' | 'unknown-key' | 'tampered') {
    super(`cache value rejected: ${reason}`)
  }
}

/**
 * AES-256-GCM for values kept in Redis. The 32-byte key is derived from the configured secret with
 * HKDF-SHA256, and a key id (derived the same way, never the key itself) is stored with each value,
 * so a rotated secret can still read what the previous one wrote until it expires.
 *
 * Stored form: `v1.<key id>.<hex of iv | tag | ciphertext>`: hex only, so nothing in Redis can be
 * mistaken for (or grep'd as) a JWT. The Redis key is authenticated data: a value copied under
 * another key fails to decrypt.
 */
export class CacheCipher {
  private readonly current: DerivedKey
  private readonly byId = new Map<string, DerivedKey>()

  constructor (secret: string, previousSecrets: readonly string[] = []) {
    this.current = deriveKey(secret)
    for (const k of [this.current, ...previousSecrets.map(deriveKey)]) {
      if (!this.byId.has(k.id)) this.byId.set(k.id, k)
    }
  }

  get keyId (): string {
    return this.current.id
  }

  encrypt (plaintext: string, associatedData: string): string {
    const iv = randomBytes(IV_BYTES)
    const cipher = createCipheriv('aes-256-gcm', this.current.key, iv)
    cipher.setAAD(Buffer.from(associatedData, 'utf8'))
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
    return `${VERSION}.${this.current.id}.${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('hex')}`
  }

  decrypt (stored: string, associatedData: string): string {
    const [version, keyId, hex, extra] = stored.split('.')
    if (version !== VERSION || keyId === undefined || hex === undefined || extra !== undefined) {
      throw new CacheDecryptError('malformed')
    }
    const key = this.byId.get(keyId)
    if (key === undefined) throw new CacheDecryptError('unknown-key')
    // Node's hex decoder stops at the first character that is not a hex pair: a shorter result is
    // the check, without a scan of its own over a value of a few thousand characters.
    const raw = Buffer.from(hex, 'hex')
    if (raw.length * 2 !== hex.length || raw.length < IV_BYTES + TAG_BYTES) throw new CacheDecryptError('malformed')
    const decipher = createDecipheriv('aes-256-gcm', key.key, raw.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES })
    decipher.setAAD(Buffer.from(associatedData, 'utf8'))
    decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES))
    try {
      return Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8')
    } catch {
      throw new CacheDecryptError('tampered')
    }
  }
}

function deriveKey (secret: string): DerivedKey {
  const ikm = Buffer.from(secret, 'utf8')
  const key = Buffer.from(hkdfSync('sha256', ikm, SALT, 'aes-256-gcm key', 32))
  const id = Buffer.from(hkdfSync('sha256', ikm, SALT, 'key id', 6)).toString('hex')
  return { id, key }
}
