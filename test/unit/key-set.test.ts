import t from 'tap'
import { generateKeyPairSync } from 'node:crypto'
import { Agent } from 'undici'
import { EntraTrust } from '../../src/validation/entra-trust'
import { verificationKeys } from '../../src/validation/jwk'
import { KeyStore } from '../../src/validation/key-store'
import { TenantKeySet } from '../../src/validation/key-set'
import type { AppPrincipal } from '../../src/validation/principal'
import { VerifiedTokenCache } from '../../src/validation/verified-token-cache'

const HOUR = 3_600_000

function harness (options: { cooldownMs?: number } = {}) {
  let clock = 1_000_000
  let published = new Map<string, { pem: string }>([['k1', { pem: 'PEM1' }]])
  let failing = false
  let fetches = 0
  const scheduled: Array<{ run: () => void, delayMs: number, cancelled: boolean }> = []
  const errors: unknown[] = []
  const set = new TenantKeySet({
    fetchKeys: async () => {
      fetches++
      await new Promise((resolve) => setImmediate(resolve))
      if (failing) throw new Error('JWKS endpoint down')
      return new Map(published)
    },
    cooldownMs: options.cooldownMs ?? 30_000,
    refreshIntervalMs: 12 * HOUR,
    now: () => clock,
    schedule: (run, delayMs) => {
      const entry = { run, delayMs, cancelled: false }
      scheduled.push(entry)
      return { cancel: () => { entry.cancelled = true } }
    },
    onRefreshError: (err) => errors.push(err)
  })
  return {
    set,
    advance: (ms: number) => { clock += ms },
    publish: (keys: Record<string, string>) => { published = new Map(Object.entries(keys).map(([kid, pem]) => [kid, { pem }])) },
    fail: (value: boolean) => { failing = value },
    fetches: () => fetches,
    scheduled,
    errors
  }
}

t.test('a known kid is served from memory; the first lookup loads the set once', async (t) => {
  const h = harness()
  t.same(await h.set.lookup('k1'), { found: true, key: { pem: 'PEM1' } })
  t.same(await h.set.lookup('k1'), { found: true, key: { pem: 'PEM1' } })
  t.equal(h.fetches(), 1)
})

t.test('1,000 concurrent random kids cost one fetch per cooldown, and a real new key is learned within one cooldown', async (t) => {
  const h = harness({ cooldownMs: 30_000 })
  await h.set.lookup('k1')
  h.advance(30_000)
  const noise = await Promise.all(Array.from({ length: 1000 }, (_, i) => h.set.lookup(`random-${i}`)))
  t.ok(noise.every((r) => !r.found && r.reason === 'unknown-kid'))
  t.equal(h.fetches(), 2, 'the burst shared one refetch')
  // Entra rolls its key right after the noise: still inside the cooldown, so not yet learned...
  h.publish({ k2: 'PEM2' })
  h.advance(10_000)
  t.same(await h.set.lookup('k2'), { found: false, reason: 'unknown-kid' })
  t.equal(h.fetches(), 2)
  // ...and learned as soon as the cooldown since the last fetch has passed, whatever the noise.
  h.advance(20_000)
  t.same(await h.set.lookup('k2'), { found: true, key: { pem: 'PEM2' } })
  t.equal(h.fetches(), 3)
  t.same(await h.set.lookup('k1'), { found: false, reason: 'unknown-kid' }, 'a withdrawn key stops validating')
})

t.test('a failed refresh keeps the last good keys; with none, lookups report unavailable', async (t) => {
  const h = harness({ cooldownMs: 1000 })
  h.fail(true)
  t.same(await h.set.lookup('k1'), { found: false, reason: 'unavailable' })
  t.same(await h.set.lookup('k1'), { found: false, reason: 'unavailable' }, 'retries at once while nothing was ever loaded')
  t.equal(h.fetches(), 2)
  h.fail(false)
  t.same(await h.set.lookup('k1'), { found: true, key: { pem: 'PEM1' } })
  h.fail(true)
  h.advance(1000)
  t.same(await h.set.lookup('other'), { found: false, reason: 'unavailable' }, 'an unknown kid while the refresh fails may be a new key: unavailable, not invalid')
  t.same(await h.set.lookup('k1'), { found: true, key: { pem: 'PEM1' } }, 'last good keys still in use')
  t.equal(h.set.state, 'stale')
  t.equal(h.errors.length, 3)
})

t.test('keys are refreshed in the background about every 12 hours, with jitter', async (t) => {
  const h = harness()
  await h.set.lookup('k1')
  const first = h.scheduled.at(-1)!
  t.ok(first.delayMs >= 11 * HOUR && first.delayMs <= 13 * HOUR, `scheduled in ${first.delayMs} ms`)
  h.publish({ k3: 'PEM3' })
  first.run()
  await new Promise((resolve) => setTimeout(resolve, 5))
  t.same(await h.set.lookup('k3'), { found: true, key: { pem: 'PEM3' } })
  t.equal(h.fetches(), 2)
  const next = h.scheduled.at(-1)!
  t.not(next, first, 'the next refresh is scheduled after each one')
  h.set.close()
  t.ok(next.cancelled, 'close() cancels the timer')
})

t.test('closed, the key store and the trust report none of the failures their closing causes', async (t) => {
  const TENANT = '7d3c1b52-6e5c-4a1f-9c0e-2f4b8a6d9e10'
  // What the plugin's onClose does: close the store, then the dispatcher every fetch goes through.
  const dispatcher = new Agent()
  await dispatcher.close()
  const reported: string[] = []
  const store = new KeyStore({ instance: 'https://127.0.0.1:1', dispatcher, timeoutMs: 1000, cooldownMs: 0, onRefreshError: (tenant, err) => reported.push(`${tenant}: ${(err as Error).message}`) })
  await store.warm(TENANT)
  t.match(reported, [new RegExp(`^${TENANT}: The client is (closed|destroyed)$`)], 'a failed fetch is reported while the store is open')
  store.close()
  await store.warm(TENANT)
  await store.warm('0a1b2c3d-0000-4000-8000-000000000001')
  t.equal(reported.length, 1, 'not after close(), for a tenant seen before or a new one')

  const trust = new EntraTrust({ instance: 'https://127.0.0.1:1', tenantId: TENANT, allowedTenants: [TENANT], dispatcher, timeoutMs: 1000, keyRefreshCooldownMs: 0 })
  await t.rejects(trust.warm(), { code: 'OBO_IDENTITY_UNAVAILABLE' }, 'an open trust says the metadata did not load')
  trust.close()
  await t.resolves(trust.warm(), 'a closed one does not')
})

t.test('JWKS documents: RSA signing keys kept, others skipped, issuer kept', async (t) => {
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const jwk = publicKey.export({ format: 'jwk' })
  const keys = verificationKeys({
    keys: [
      { ...jwk, kid: 'good', use: 'sig', issuer: 'https://login.example/{tenantid}/v2.0' },
      { ...jwk, kid: 'no-use' },
      { ...jwk, kid: 'enc', use: 'enc' },
      { kty: 'EC', kid: 'ec', crv: 'P-256', x: 'a', y: 'b' },
      { kty: 'RSA', kid: 'broken', n: '!!', e: 'AQAB' },
      { ...jwk }
    ]
  })
  t.same([...keys.keys()], ['good', 'no-use'])
  t.equal(keys.get('good')?.issuer, 'https://login.example/{tenantid}/v2.0')
  t.match(keys.get('good')?.pem, /^-----BEGIN PUBLIC KEY-----/)
  t.throws(() => verificationKeys({ nope: [] }), { message: 'the JWKS document has no keys array' })
})

t.test('verified-token cache: keyed by hash, lives no longer than the token, bounded', async (t) => {
  let clock = 1_000_000_000
  const cache = new VerifiedTokenCache(2, 300, () => clock)
  const principal: AppPrincipal = { kind: 'app', tenantId: 't', clientId: 'c', objectId: 'o', expiresAt: 0, tokenVersion: '2.0', roles: ['r'] }
  const at = clock / 1000
  cache.set('token-a', { claims: { exp: at + 60, nbf: at + 400 }, principal })
  t.equal(cache.get('token-a'), undefined, 'not before nbf minus the skew')
  clock += 300_000
  t.same(cache.get('token-a')?.principal, principal)
  clock += 61_000
  t.equal(cache.get('token-a'), undefined, 'gone once exp plus the skew has passed')
  cache.set('no-exp', { claims: {}, principal })
  t.equal(cache.size, 0, 'a token without exp is never cached')
  for (const token of ['x', 'y', 'z']) cache.set(token, { claims: { exp: clock / 1000 + 600 }, principal })
  t.equal(cache.size, 2)
  t.equal(cache.get('x'), undefined, 'least recently used evicted')
  t.ok(cache.get('z'))
})
