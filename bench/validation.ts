/**
 * The gateway's token validation (TokenValidator, what entraAuthenticate runs) against a bare
 * `crypto.verify` of the same tokens, in CPU time of this process, interleaved rounds:
 *   - full path: a token not seen before (syntax, SHA-256, decode, issuer policy, key lookup,
 *     RS256, claims, principal, the cache entry),
 *   - cache hit: the same token again (SHA-256 and one lookup),
 *   - crypto.verify alone, on the same tokens with the same key object: the goal's baseline,
 *   - what any validator that caches must do, without a single check: SHA-256, decode the payload,
 *     crypto.verify, one cache insert. Its ratio to the bare verify is as low as the full path can go.
 * Run: npm run bench:validation [-- --rounds 7 --profile]
 */
import { createPublicKey, hash, verify } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { LRUCache } from 'lru-cache'
import { DEFAULTS } from '../src/config/defaults'
import { DEV_IDS, startEmulator } from '../src/emulator'
import { aliceAccessClaims } from './lib/alice-claims'
import { createHttpsAgent } from '../src/net/https-agent'
import { fetchJson } from '../src/net/fetch-json'
import { assertionFrom } from '../src/validation/assertion'
import { EntraTrust } from '../src/validation/entra-trust'
import { verificationKeys } from '../src/validation/jwk'
import { TokenValidator } from '../src/validation/token-validator'
import { printSummary, summariseProfile } from './lib/profile'
import { median } from './lib/report'
import { formatRatios, interleave, loadLine, roundRatios } from './lib/rounds'

const { values: args } = parseArgs({ options: { rounds: { type: 'string', default: '7' }, tokens: { type: 'string', default: '2000' }, profile: { type: 'boolean', default: false } } })
const ROUNDS = Number(args.rounds)
const DISTINCT = Number(args.tokens)
const HITS = 50_000

async function main (): Promise<void> {
  const emulator = await startEmulator({ dataDir: mkdtempSync(join(tmpdir(), 'obo-bench-')) })
  const agent = createHttpsAgent({ ca: [emulator.caPem] })
  const trust = new EntraTrust({
    instance: emulator.url,
    tenantId: DEV_IDS.tenantId,
    allowedTenants: [DEV_IDS.tenantId],
    dispatcher: agent,
    timeoutMs: DEFAULTS.identity.timeoutMs,
    keyRefreshCooldownMs: DEFAULTS.identity.keyRefreshCooldownSeconds * 1000
  })
  await trust.warm()
  const validatorOptions = { audiences: [DEV_IDS.gateway.clientId], clockSkewSeconds: DEFAULTS.identity.clockSkewSeconds, verifiedTokenCacheSize: DEFAULTS.identity.verifiedTokenCacheSize }

  const now = Math.floor(Date.now() / 1000)
  const base = aliceAccessClaims(DEV_IDS, emulator.url, now)
  const headers = Array.from({ length: DISTINCT }, (_, i) => `Bearer ${emulator.keys.sign(DEV_IDS.tenantId, { ...base, uti: `u${i}` })}`)
  const tokens = headers.map((h) => h.slice(7))
  const keys = verificationKeys(await fetchJson(`${emulator.url}/${DEV_IDS.tenantId}/discovery/v2.0/keys`, agent))
  const publicKey = createPublicKey([...keys.values()][0]!.pem)

  // A fresh cache each batch: every token is one it has not seen. Built ahead of the timed batch,
  // as a gateway builds its one validator at start: its LRU preallocates a slot per entry.
  const batches = ROUNDS + 1 + (args.profile ? 5 : 0)
  const validators = Array.from({ length: batches }, () => new TokenValidator(trust, validatorOptions))
  const fullPath = async (): Promise<number> => {
    const validator = validators.pop()
    if (validator === undefined) throw new Error('no fresh validator left')
    for (const header of headers) await validator.validate(header)
    return headers.length
  }
  const hitValidator = new TokenValidator(trust, validatorOptions)
  await hitValidator.validate(headers[0])
  const cacheHit = async (): Promise<number> => {
    for (let i = 0; i < HITS; i++) await hitValidator.validate(headers[0])
    return HITS
  }
  const bareVerify = (): number => {
    for (const token of tokens) {
      const dot = token.lastIndexOf('.')
      if (!verify('sha256', Buffer.from(token.slice(0, dot)), publicKey, Buffer.from(token.slice(dot + 1), 'base64url'))) throw new Error('bad signature')
    }
    return tokens.length
  }
  const floors = Array.from({ length: batches }, () => new LRUCache<string, object>({ max: validatorOptions.verifiedTokenCacheSize }))
  const unavoidable = (): number => {
    const cache = floors.pop()
    if (cache === undefined) throw new Error('no fresh cache left')
    for (const token of tokens) {
      const first = token.indexOf('.')
      const last = token.lastIndexOf('.')
      const claims = JSON.parse(Buffer.from(token.slice(first + 1, last), 'base64url').toString('utf8')) as object
      if (!verify('sha256', Buffer.from(token.slice(0, last)), publicKey, Buffer.from(token.slice(last + 1), 'base64url'))) throw new Error('bad signature')
      cache.set(hash('sha256', token, 'base64url'), claims)
    }
    return tokens.length
  }
  const hashOnly = (): number => {
    for (let i = 0; i < HITS; i++) assertionFrom(tokens[0]!)
    return HITS
  }

  const cases = [
    { name: 'full path (token not seen before)', batch: fullPath },
    { name: 'crypto.verify alone, same tokens', batch: bareVerify },
    { name: 'cache hit (same token again)', batch: cacheHit },
    { name: 'unavoidable: hash + decode + verify + insert, no checks', batch: unavoidable },
    { name: 'SHA-256 of the token alone', batch: hashOnly }
  ]
  console.log(`node ${process.version}; ${ROUNDS} interleaved rounds; per round ${DISTINCT} distinct tokens (${tokens[0]!.length} characters) and ${HITS} hits; CPU time of this process per operation; ${loadLine()} at start`)
  // One untimed pass of everything: the JIT's warm-up is not a round.
  for (const c of cases) await c.batch()
  console.log(`\n| round | ${cases.map((c) => c.name).join(' | ')} | full ÷ verify | full ÷ hit | unavoidable ÷ verify |`)
  console.log(`|---:|${cases.map(() => '---:|').join('')}---:|---:|---:|`)
  const results = await interleave(cases, ROUNDS, (round, f) => {
    console.log(`| ${round} | ${f.map((us) => `${us.toFixed(1)} µs`).join(' | ')} | ${(f[0]! / f[1]!).toFixed(2)} | ${(f[0]! / f[2]!).toFixed(1)} | ${(f[3]! / f[1]!).toFixed(2)} |`)
  })
  const [full, rsa, hit, floor] = results.map((r) => r.usPerOp) as [number[], number[], number[], number[]]
  console.log(`| median | ${results.map((r) => `${median(r.usPerOp).toFixed(1)} µs`).join(' | ')} | | | |`)
  console.log('')
  console.log(`full path ÷ crypto.verify, round by round: ${formatRatios(roundRatios(full, rsa))}   goal ≤ 1.30`)
  console.log(`full path ÷ cache hit, round by round: ${formatRatios(roundRatios(full, hit))}   goal ≥ 10`)
  console.log(`unavoidable work ÷ crypto.verify, round by round: ${formatRatios(roundRatios(floor, rsa))}   (the lowest the full path can reach)`)
  console.log(`full path minus crypto.verify: ${(median(full) - median(rsa)).toFixed(1)} µs (medians); ${loadLine()} at end`)

  if (args.profile) {
    const session = new Session()
    session.connect()
    await session.post('Profiler.enable')
    await session.post('Profiler.setSamplingInterval', { interval: 50 })
    await session.post('Profiler.start')
    let ops = 0
    for (let i = 0; i < 5; i++) ops += await fullPath()
    const { profile } = await session.post('Profiler.stop')
    const file = join(tmpdir(), `bench-validation-${process.pid}.cpuprofile`)
    writeFileSync(file, JSON.stringify(profile))
    console.log(`\n### CPU profile of the full path (${ops} validations, ${file})`)
    printSummary(summariseProfile('full path', file, ops))
  }
  trust.close()
  await agent.close()
  await emulator.close()
}

main().catch((err) => { console.error(err); process.exitCode = 1 })
