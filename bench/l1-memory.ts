/**
 * Memory per cached user in L1 (issue #15): a fresh process fills the gateway's TokenCache (L1
 * only) with N users' downstream tokens, each its own string of the size Entra issues, under OBO
 * cache keys derived as the gateway derives them, and reports the growth of RSS and of the V8
 * heap per entry after full garbage collections. Nothing else runs in the process, so the figures
 * are the cache's.
 *
 *   npm run bench:l1-memory [-- 100000]
 */
import { randomBytes } from 'node:crypto'
import { oboCacheKey } from '../src/acquisition/cache-key'
import { TokenCache } from '../src/acquisition/token-cache'
import { assertionFrom } from '../src/validation/assertion'
import { loadLine } from './lib/rounds'

const USERS = Number(process.argv[2] ?? 100_000)
const TOKEN_CHARS = 1115
const SCOPES = ['api://sample-api/Items.Read']
const gc = (globalThis as { gc?: () => void }).gc

function settle (): NodeJS.MemoryUsage {
  if (gc === undefined) throw new Error('run with --expose-gc (npm run bench:l1-memory does)')
  for (let i = 0; i < 4; i++) gc()
  return process.memoryUsage()
}

async function main (): Promise<void> {
  const cache = new TokenCache({ l1: { maxEntries: USERS, maxBytes: USERS * 4096 } })
  const assertionBase = `eyJ${randomBytes(750).toString('base64url')}`
  const tokenBase = `eyJ${randomBytes(Math.ceil(TOKEN_CHARS * 0.75)).toString('base64url')}`.slice(0, TOKEN_CHARS - 12)
  const expiresOn = new Date(Date.now() + 3600_000)
  const before = settle()
  for (let i = 0; i < USERS; i++) {
    const tag = String(i).padStart(12, '0')
    const key = oboCacheKey({ clientId: 'gateway', tenantId: 'tenant', assertion: assertionFrom(assertionBase + tag), scopes: SCOPES, cp1: false })
    // Flattened so each entry holds a plain string of its own, as a token parsed from Entra's answer does.
    const accessToken = JSON.parse(JSON.stringify(tokenBase + tag)) as string
    await cache.get(key, async () => ({ accessToken, expiresOn }))
  }
  const after = settle()
  const status = cache.status().l1
  if (status.entries !== USERS) throw new Error(`L1 holds ${status.entries} entries, not ${USERS}`)
  const per = (field: 'rss' | 'heapUsed'): string => Math.round((after[field] - before[field]) / USERS).toLocaleString('en-US')
  console.log(`node ${process.version}; ${USERS.toLocaleString('en-US')} users in L1, downstream tokens of ${TOKEN_CHARS} characters; ${loadLine()}`)
  console.log(`RSS ${(before.rss / 2 ** 20).toFixed(0)} → ${(after.rss / 2 ** 20).toFixed(0)} MiB: ${per('rss')} bytes per cached user`)
  console.log(`V8 heap used ${(before.heapUsed / 2 ** 20).toFixed(0)} → ${(after.heapUsed / 2 ** 20).toFixed(0)} MiB: ${per('heapUsed')} bytes per cached user`)
  console.log(`the L1's own estimate (what tokenCache.l1.maxBytes bounds): ${Math.round(status.bytes / USERS).toLocaleString('en-US')} bytes per entry`)
  await cache.close()
}

main().catch((err: unknown) => { console.error(err); process.exitCode = 1 })
