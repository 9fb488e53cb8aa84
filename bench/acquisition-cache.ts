/**
 * Cache-hit cost per request with N distinct users cached: the gateway's acquisition path
 * (TokenAcquirer → TokenCache L1) against msal-node's own acquireTokenOnBehalfOf cache, same run,
 * same process, same emulator. Also the L1's memory per cached entry.
 *
 *   npm run bench:cache              (N = 10, 1,000, 10,000, 100,000)
 *   npm run bench:cache -- 10 1000   (other sizes)
 *
 * How both caches are populated: the measured user's token comes from a real OBO call to the
 * emulator in both. The other N-1 users are clones of that real answer with another user id and
 * assertion: for msal-node its serialized cache entries (Account, IdToken, AccessToken with its own
 * user_assertion_hash, RefreshToken) loaded with getTokenCache().deserialize(); for the gateway an
 * L1 entry holding the same downstream token under the cache key of a distinct assertion. Signing
 * 100,000 real assertions and making 100,000 OBO calls would only make the set-up slower: neither
 * cache looks inside the tokens on a hit.
 */
import { createHash, randomUUID } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { oboCacheKey } from '../src/acquisition/cache-key'
import { assertionFrom } from '../src/validation/assertion'
import { ConfidentialClients } from '../src/acquisition/confidential-clients'
import { createMsalNetworkClient } from '../src/acquisition/msal-network-client'
import { TokenAcquirer } from '../src/acquisition/token-acquirer'
import { TokenCache } from '../src/acquisition/token-cache'
import { resolveConfig } from '../src/config/load'
import { DEV_IDS, startEmulator } from '../src/emulator'
import { principalFromClaims, type DelegatedPrincipal } from '../src/validation/principal'
import { jwtClaims, SeedClients } from './lib/sign-in'
import { SILENT_LOG } from './lib/silent-log'

const SIZES = process.argv.slice(2).map(Number).filter((n) => n > 0)
const USERS = SIZES.length > 0 ? SIZES : [10, 1_000, 10_000, 100_000]
const SCOPES = [`${DEV_IDS.sampleApi.identifierUri}/Items.Read`]
const TENANT = DEV_IDS.tenantId

interface Timing { perOpUs: number, iterations: number }

async function time (fn: () => Promise<unknown>, budgetMs: number, maxIterations: number): Promise<Timing> {
  const warm = performance.now()
  for (let i = 0; i < 50 && (i < 2 || performance.now() - warm < 200); i++) await fn() // warm-up
  let iterations = 0
  const start = performance.now()
  while (iterations < maxIterations && (iterations < 3 || performance.now() - start < budgetMs)) {
    await fn()
    iterations++
  }
  return { perOpUs: ((performance.now() - start) * 1000) / iterations, iterations }
}

function gc (): void {
  const g = (globalThis as { gc?: () => void }).gc
  if (g !== undefined) { g(); g() }
}

async function main (): Promise<void> {
  const emulator = await startEmulator({ dataDir: mkdtempSync(join(tmpdir(), 'obo-bench-')) })
  const kit = new SeedClients(emulator)
  const assertion = await kit.aliceToken()
  const principal = principalFromClaims(jwtClaims(assertion), TENANT) as DelegatedPrincipal
  const config = resolveConfig({
    identity: { instance: emulator.url, tenantId: TENANT, clientId: DEV_IDS.gateway.clientId, credential: { clientSecret: DEV_IDS.gateway.secret }, tls: { caFile: emulator.caFile } },
    routes: [{ prefix: '/api', upstream: 'http://127.0.0.1:1', user: { requireScopes: ['access_as_user'], scopes: SCOPES } }]
  }, { source: 'bench' })

  const rows: string[] = []
  let memoryRow = ''
  for (const n of USERS) {
    // msal-node: the measured user through a real OBO call, the others deserialized clones of it.
    const msal = kit.gatewayClient()
    const real = await msal.acquireTokenOnBehalfOf({ oboAssertion: assertion, scopes: SCOPES })
    if (real === null) throw new Error('no OBO result')
    const serialized = JSON.parse(msal.getTokenCache().serialize()) as Record<string, Record<string, Record<string, unknown>>>
    // deserialize() replaces the whole cache: start from the real entries.
    const clones: Record<string, Record<string, unknown>> = { Account: { ...serialized.Account }, IdToken: { ...serialized.IdToken }, AccessToken: { ...serialized.AccessToken }, RefreshToken: { ...serialized.RefreshToken }, AppMetadata: { ...serialized.AppMetadata } }
    const realOid = DEV_IDS.alice.objectId
    for (let i = 1; i < n; i++) {
      const oid = randomUUID()
      const hash = createHash('sha256').update(`assertion-${i}`).digest('base64url')
      for (const kind of ['Account', 'IdToken', 'AccessToken', 'RefreshToken'] as const) {
        for (const [key, value] of Object.entries(serialized[kind] ?? {})) {
          const copy = JSON.parse(JSON.stringify(value).replaceAll(realOid, oid)) as Record<string, unknown>
          if (kind === 'AccessToken') copy.userAssertionHash = hash
          clones[kind]![key.replaceAll(realOid, oid)] = copy
        }
      }
    }
    msal.getTokenCache().deserialize(JSON.stringify(clones))
    const msalCount = Object.keys(JSON.parse(msal.getTokenCache().serialize()).AccessToken as object).length
    const check = await msal.acquireTokenOnBehalfOf({ oboAssertion: assertion, scopes: SCOPES })
    if (check?.accessToken !== real.accessToken || check.fromCache !== true) throw new Error(`msal-node did not answer from its cache (same token: ${String(check?.accessToken === real.accessToken)}, fromCache: ${String(check?.fromCache)}, access tokens: ${msalCount})`)

    // The gateway: the measured user through a real OBO call (via the acquirer), the others as L1 entries.
    const clients = new ConfidentialClients(config.identity, createMsalNetworkClient(kit.agent), SILENT_LOG)
    const cache = new TokenCache({ l1: { maxEntries: n + 10, maxBytes: (n + 10) * 4096 } })
    const acquirer = new TokenAcquirer(clients, { clientId: DEV_IDS.gateway.clientId, homeTenantId: TENANT, cache })
    const first = await acquirer.forUser(principal, assertionFrom(assertion), SCOPES)
    const filler = { accessToken: first.accessToken, expiresOn: first.expiresOn }
    gc()
    const heapBefore = process.memoryUsage().heapUsed
    const fakeAssertionBase = assertion.slice(0, -12)
    for (let i = 1; i < n; i++) {
      // A distinct assertion of the real one's length, as the key derivation sees it; the token is a copy (own string).
      const fake = `${fakeAssertionBase}${String(i).padStart(12, '0')}`
      const key = oboCacheKey({ clientId: DEV_IDS.gateway.clientId, tenantId: TENANT, assertion: assertionFrom(fake), scopes: SCOPES, cp1: false })
      await cache.get(key, async () => ({ accessToken: (filler.accessToken + ' ').slice(0, -1), expiresOn: filler.expiresOn }), { notAfter: principal.expiresAt * 1000 })
    }
    gc()
    const heapPerEntry = n > 1 ? (process.memoryUsage().heapUsed - heapBefore) / (n - 1) : 0
    const measured = assertionFrom(assertion)
    const hit = await acquirer.forUser(principal, measured, SCOPES)
    if (hit.source !== 'l1' || cache.status().l1.entries !== n) throw new Error('gateway did not answer from L1')

    // Hashing the assertion is part of the cost (the gateway does it once per request, in validation).
    const gateway = await time(async () => await acquirer.forUser(principal, assertionFrom(assertion), SCOPES), 1000, 50_000)
    const own = await time(async () => await msal.acquireTokenOnBehalfOf({ oboAssertion: assertion, scopes: SCOPES }), n >= 100_000 ? 4000 : 2000, 2000)
    const ratio = own.perOpUs / gateway.perOpUs
    rows.push(`| ${n.toLocaleString('en-US')} | ${fmt(gateway.perOpUs)} (${gateway.iterations}) | ${fmt(own.perOpUs)} (${own.iterations}) | ${ratio.toFixed(ratio >= 100 ? 0 : 1)}× |`)
    console.error(`n=${n}: gateway ${fmt(gateway.perOpUs)}, msal-node ${fmt(own.perOpUs)} (${msalCount} access tokens), heap/entry ${Math.round(heapPerEntry)} B`)
    if (n >= 10_000) {
      memoryRow = `L1 memory per cached entry at ${n.toLocaleString('en-US')} entries: ${Math.round(heapPerEntry)} bytes of V8 heap ` +
        `(downstream token ${first.accessToken.length} characters; the L1's own byte estimate per entry: ${Math.round(cache.status().l1.bytes / n)} bytes)`
    }
    await cache.close()
  }
  await kit.close()
  await emulator.close()

  console.log(`Node ${process.version}, ${process.platform}/${process.arch}, @azure/msal-node ${(require('@azure/msal-node/package.json') as { version: string }).version}\n`)
  console.log('| users cached | gateway hit, per request (iterations) | msal-node acquireTokenOnBehalfOf hit (iterations) | msal-node ÷ gateway |')
  console.log('|---:|---:|---:|---:|')
  for (const row of rows) console.log(row)
  if (memoryRow !== '') console.log(`\n${memoryRow}`)
}

function fmt (us: number): string {
  return us >= 1000 ? `${(us / 1000).toFixed(1)} ms` : `${us.toFixed(1)} µs`
}

main().catch((err: unknown) => { console.error(err); process.exit(1) })
