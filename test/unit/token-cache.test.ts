import t from 'tap'
import { appCacheKey, normalizeScopes, oboCacheKey } from '../../src/acquisition/cache-key'
import { assertionFrom } from '../../src/validation/assertion'
import { CacheCipher, CacheDecryptError } from '../../src/acquisition/cache-crypto'
import { entrySize, L1Cache } from '../../src/acquisition/l1-cache'
import { parseRedisUrl } from '../../src/redis/url'
import { SingleFlight } from '../../src/acquisition/single-flight'
import { TokenCache, type FreshToken } from '../../src/acquisition/token-cache'
import type { CacheEntry } from '../../src/acquisition/cache-entry'

const CLIENT = '5617d05d-1e0b-4a47-9d1a-3f2c3b7a9e11'
const TENANT = '7d3c1b52-6e5c-4a1f-9c0e-2f4b8a6d9e10'
const base = { clientId: CLIENT, tenantId: TENANT, assertion: assertionFrom('eyJhbGciOi.assertion-of-alice.sig'), scopes: ['api://x/Items.Read', 'api://x/Items.Write'], cp1: false }

t.test('cache keys: same inputs give the same key, anything that changes the token gives another', async (t) => {
  const key = oboCacheKey(base)
  t.match(key, /^[0-9a-f]{64}$/, 'a SHA-256 hex digest')
  t.notMatch(key, /alice|eyJ/, 'nothing of the assertion is readable in it')
  t.equal(oboCacheKey({ ...base, scopes: ['API://x/items.write', 'api://x/Items.Read', 'api://x/Items.Read'] }), key, 'scope order, case and repeats do not matter')
  const variants = {
    'another user': { ...base, assertion: assertionFrom('eyJhbGciOi.assertion-of-bob.sig') },
    'another tenant': { ...base, tenantId: '00000000-0000-4000-8000-000000000001' },
    'other scopes': { ...base, scopes: ['api://x/Items.Read'] },
    'claims requested': { ...base, claims: '{"access_token":{"acrs":{"essential":true,"value":"c1"}}}' },
    'cp1 declared': { ...base, cp1: true },
    'another gateway': { ...base, clientId: '00000000-0000-4000-8000-000000000002' }
  }
  const seen = new Set([key])
  for (const [name, parts] of Object.entries(variants)) {
    const other = oboCacheKey(parts)
    t.not(other, key, name)
    seen.add(other)
  }
  t.equal(seen.size, Object.keys(variants).length + 1, 'all distinct')
  // No separator ambiguity: moving a character from one part to the next changes the key.
  t.not(oboCacheKey({ ...base, scopes: ['a b', 'c'] }), oboCacheKey({ ...base, scopes: ['a', 'b c'] }))

  const app = appCacheKey({ clientId: CLIENT, tenantId: TENANT, scopes: ['api://x/.default'], cp1: false })
  t.equal(app, appCacheKey({ clientId: CLIENT, tenantId: TENANT.toUpperCase(), scopes: ['API://X/.default'], cp1: false }))
  t.not(app, appCacheKey({ clientId: CLIENT, tenantId: TENANT, scopes: ['api://x/.default'], cp1: true }))
  t.not(app, oboCacheKey({ ...base, scopes: ['api://x/.default'] }), 'app and OBO keys never meet')
  t.same(normalizeScopes([' B ', 'a', 'b', '']), ['a', 'b'])
})

t.test('encryption: round trip, key id stored, rotation, tamper detection', async (t) => {
  const cipher = new CacheCipher('current-secret-0123456789')
  const token = 'eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln'
  const sealed = cipher.encrypt(token, 'obo-gateway:v1:{k1}:t')
  t.equal(cipher.decrypt(sealed, 'obo-gateway:v1:{k1}:t'), token)
  t.match(sealed, /^v1\.[0-9a-f]{12}\.[0-9a-f]+$/, 'version, key id and hex: no base64 that could hold a JWT')
  t.equal(sealed.split('.')[1], cipher.keyId)
  t.notMatch(sealed, /eyJ/)
  t.not(cipher.encrypt(token, 'obo-gateway:v1:{k1}:t'), sealed, 'a fresh IV each time')
  t.not(cipher.keyId, new CacheCipher('another-secret-0123456789').keyId)

  // Rotation: the new key reads what the old one wrote; without the old key listed it cannot.
  const rotated = new CacheCipher('next-secret-0123456789ab', ['current-secret-0123456789'])
  t.equal(rotated.decrypt(sealed, 'obo-gateway:v1:{k1}:t'), token)
  t.equal(rotated.encrypt(token, 'a').split('.')[1], new CacheCipher('next-secret-0123456789ab').keyId, 'new values use the new key')
  t.throws(() => new CacheCipher('next-secret-0123456789ab').decrypt(sealed, 'obo-gateway:v1:{k1}:t'), new CacheDecryptError('unknown-key'))

  // Tampering: a flipped ciphertext bit, a value moved to another key, a forged key id, garbage.
  const hex = sealed.split('.')[2]!
  const flipped = `${sealed.slice(0, -1)}${sealed.endsWith('0') ? '1' : '0'}`
  t.throws(() => cipher.decrypt(flipped, 'obo-gateway:v1:{k1}:t'), new CacheDecryptError('tampered'))
  t.throws(() => cipher.decrypt(sealed, 'obo-gateway:v1:{k2}:t'), new CacheDecryptError('tampered'), 'bound to its Redis key')
  t.throws(() => cipher.decrypt(`v1.000000000000.${hex}`, 'obo-gateway:v1:{k1}:t'), new CacheDecryptError('unknown-key'))
  for (const bad of ['', 'v2.x.00', `v1.${cipher.keyId}.zz`, `v1.${cipher.keyId}.00`, `v1.${cipher.keyId}.${hex}.extra`, token]) {
    t.throws(() => cipher.decrypt(bad, 'a'), CacheDecryptError, JSON.stringify(bad.slice(0, 20)))
  }
  // Not hex past the IV and tag, or an odd digit out: malformed, refused before any decryption.
  for (const bad of [`${hex.slice(0, 60)}zz${hex.slice(62)}`, `${hex}0`]) {
    t.throws(() => cipher.decrypt(`v1.${cipher.keyId}.${bad}`, 'obo-gateway:v1:{k1}:t'), new CacheDecryptError('malformed'))
  }
})

function entry (token: string, lifeMs = 60_000, now = Date.now()): CacheEntry {
  return { accessToken: token, expiresOn: now + lifeMs, expiresAt: now + lifeMs }
}

t.test('L1 is bounded by entries and by bytes, and drops expired entries', async (t) => {
  const byCount = new L1Cache({ maxEntries: 3, maxBytes: 1_000_000 })
  for (const k of ['a', 'b', 'c', 'd']) byCount.set(k, entry(`token-${k}`))
  t.equal(byCount.size, 3)
  t.equal(byCount.get('a'), undefined, 'least recently used went first')
  t.equal(byCount.get('d')?.accessToken, 'token-d')

  const token = 'x'.repeat(1000)
  const one = entrySize(entry(token))
  const byBytes = new L1Cache({ maxEntries: 1000, maxBytes: one * 5 + 10 })
  for (let i = 0; i < 20; i++) byBytes.set(`k${i}`, entry(token))
  t.equal(byBytes.size, 5, 'no more than the byte bound holds')
  t.ok(byBytes.bytes <= one * 5 + 10)

  const now = Date.now()
  const timed = new L1Cache({ maxEntries: 10, maxBytes: 1_000_000 })
  timed.set('live', entry('t', 10_000, now), now)
  timed.set('dead', entry('t', -1, now), now)
  t.equal(timed.get('dead', now), undefined, 'an entry already expired is not stored')
  t.equal(timed.get('live', now + 9_999)?.accessToken, 't')
  t.equal(timed.get('live', now + 10_000), undefined, 'gone at its expiresAt')
  t.equal(timed.size, 0)
})

t.test('single flight: concurrent calls share one execution; failures and sync throws do not stick', async (t) => {
  const flight = new SingleFlight<number>()
  let runs = 0
  const work = async (): Promise<number> => { runs++; await new Promise((resolve) => setTimeout(resolve, 10)); return 42 }
  const results = await Promise.all(Array.from({ length: 100 }, async () => await flight.run('k', work)))
  t.equal(runs, 1)
  t.ok(results.every((r) => r === 42))
  t.equal(flight.joined, 99)
  t.equal(flight.size, 0)
  await t.rejects(flight.run('k', () => { throw new Error('sync') }), /sync/)
  t.equal(flight.size, 0, 'a synchronous throw leaves no stale flight')
  t.equal(await flight.run('k', work), 42)
  t.equal(runs, 2)
})

t.test('Redis URL forms', async (t) => {
  t.same(parseRedisUrl('redis://127.0.0.1:6379/2'), { mode: 'standalone', url: 'redis://127.0.0.1:6379/2' })
  t.same(parseRedisUrl('rediss://:pw@cache.example:6380'), { mode: 'standalone', url: 'rediss://:pw@cache.example:6380' })
  t.same(parseRedisUrl('redis+sentinel://:s%40cret@s1:26379,s2,[::1]:26380/mymaster/3?sentinelPassword=sp'), {
    mode: 'sentinel',
    sentinels: [{ host: 's1', port: 26379 }, { host: 's2', port: 26379 }, { host: '::1', port: 26380 }],
    name: 'mymaster',
    db: 3,
    tls: false,
    password: 's@cret',
    sentinelPassword: 'sp'
  })
  t.same(parseRedisUrl('rediss+cluster://user:pw@n1:7000,n2:7001'), {
    mode: 'cluster', nodes: [{ host: 'n1', port: 7000 }, { host: 'n2', port: 7001 }], tls: true, username: 'user', password: 'pw'
  })
  for (const bad of ['http://x', 'redis+sentinel://s1:26379', 'redis+cluster://n1:7000/1', 'redis+sentinel://s1:99999/m', 'redis+sentinel://s1/m/x']) {
    t.throws(() => parseRedisUrl(bad), Error, bad)
  }
})

t.test('entry life: the earlier of token expiry minus the margin and the assertion expiry; never assumed', async (t) => {
  let now = 1_000_000_000_000
  const cache = new TokenCache({ l1: { maxEntries: 100, maxBytes: 1_000_000 }, expiryMarginSeconds: 300, now: () => now })
  let calls = 0
  const acquire = (token: FreshToken) => async () => { calls++; return token }

  // Token for 3600 s, assertion for 600 s: served for 600 s.
  const hour: FreshToken = { accessToken: 'A', expiresOn: new Date(now + 3_600_000) }
  t.equal((await cache.get('k1', acquire(hour), { notAfter: now + 600_000 })).source, 'entra')
  now += 599_000
  t.equal((await cache.get('k1', acquire(hour), { notAfter: now + 1_000 })).source, 'l1')
  now += 1_000
  t.equal((await cache.get('k1', acquire({ ...hour, expiresOn: new Date(now + 3_600_000) }), { notAfter: now + 3_600_000 })).source, 'entra', 'expired with the assertion')

  // Token for 3600 s, long assertion: the 300 s margin applies.
  const k2 = { accessToken: 'B', expiresOn: new Date(now + 3_600_000) }
  await cache.get('k2', acquire(k2))
  now += 3_299_000
  t.equal((await cache.get('k2', acquire(k2))).source, 'l1')
  now += 1_000
  t.equal((await cache.get('k2', acquire({ ...k2, expiresOn: new Date(now + 3_600_000) }))).source, 'entra')

  // A short-lived token keeps half its life rather than none; an unknown expiry is never cached.
  await cache.get('k3', acquire({ accessToken: 'C', expiresOn: new Date(now + 60_000) }))
  now += 29_999
  t.equal((await cache.get('k3', acquire(k2))).source, 'l1')
  t.equal((await cache.get('k4', acquire({ accessToken: 'D', expiresOn: null }))).source, 'uncached')
  t.equal((await cache.get('k4', acquire({ accessToken: 'D', expiresOn: null }))).source, 'uncached')
  t.equal(calls, 7)
  t.match(cache.status(), { l2: 'disabled', l1: { entries: 3 } })
  t.match(cache.stats(), { hits: { l1: 3, l2: 0 }, misses: { l1: 7, l2: 0 }, acquisitions: 7 })

  await cache.evict('k3')
  t.equal((await cache.get('k3', acquire({ accessToken: 'C2', expiresOn: new Date(now + 60_000) }))).accessToken, 'C2', 'evict() forgets')
})

t.test('app tokens refresh ahead: refresh_in when Entra sent it, else half-way; failures keep the old token', async (t) => {
  let now = 2_000_000_000_000
  const cache = new TokenCache({ l1: { maxEntries: 100, maxBytes: 1_000_000 }, now: () => now, refreshRetryMs: 10_000 })
  let calls = 0
  let fail = false
  const acquire = async (): Promise<FreshToken> => {
    calls++
    if (fail) throw new Error('Entra down')
    return { accessToken: `T${calls}`, expiresOn: new Date(now + 3_600_000) }
  }
  const settle = async (): Promise<void> => { for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve)) }
  t.equal((await cache.get('app', acquire, { refreshAhead: true })).accessToken, 'T1')
  now += 1_799_000
  t.equal((await cache.get('app', acquire, { refreshAhead: true })).accessToken, 'T1', 'before half-life: plain hit')
  await settle()
  t.equal(calls, 1)
  now += 1_000
  t.equal((await cache.get('app', acquire, { refreshAhead: true })).accessToken, 'T1', 'past half-life: the cached token now ...')
  await settle()
  t.equal(calls, 2, '... and one refresh behind it')
  t.equal((await cache.get('app', acquire, { refreshAhead: true })).accessToken, 'T2')

  fail = true
  now += 1_800_000
  t.equal((await cache.get('app', acquire, { refreshAhead: true })).accessToken, 'T2')
  await settle()
  t.equal(calls, 3)
  t.equal((await cache.get('app', acquire, { refreshAhead: true })).accessToken, 'T2', 'a failed refresh keeps serving the valid token')
  await settle()
  t.equal(calls, 3, 'and is not retried at once')
  t.match(cache.stats(), { refreshes: 2, refreshFailures: 1 })

  // refresh_in: Entra says refresh after 10 minutes.
  fail = false
  const suggested = async (): Promise<FreshToken> => { calls++; return { accessToken: 'R', expiresOn: new Date(now + 3_600_000), refreshOn: new Date(now + 600_000) } }
  await cache.get('app2', suggested, { refreshAhead: true })
  now += 600_000
  await cache.get('app2', suggested, { refreshAhead: true })
  await settle()
  t.equal(calls, 5)
})
