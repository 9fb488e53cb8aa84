/**
 * An L2 hit (issue #15): a second gateway instance, its L1 empty, finding a token another instance
 * stored in Redis — TokenCache.get through L1 miss, Redis GET, AES-256-GCM open, shape check and
 * the L1 fill — against a raw ioredis GET of the same value plus its AES-256-GCM decryption and
 * JSON.parse, with node:crypto directly. CPU time of this process per lookup (Redis's own CPU is
 * not in either), one lookup at a time; within a round the sides alternate every 100 lookups;
 * every round printed.
 *
 *   npm run bench:l2 [-- --rounds 7 --keys 2000 --profile]      (REDIS_URL, default redis://127.0.0.1:6379)
 *
 * --profile: five more L2 batches under the V8 CPU profiler, summarised by area and function.
 */
import { createDecipheriv, hash, hkdfSync, randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import type { Cluster, Redis } from 'ioredis'
import { L2Redis } from '../src/acquisition/l2-redis'
import { TokenCache } from '../src/acquisition/token-cache'
import { connectRedis } from '../src/redis/client'
import { printSummary, summariseProfile } from './lib/profile'
import { median } from './lib/report'
import { cpuPerOp, formatRatios, loadLine, roundRatios } from './lib/rounds'

const { values: args } = parseArgs({ options: { rounds: { type: 'string', default: '7' }, keys: { type: 'string', default: '2000' }, profile: { type: 'boolean', default: false } } })
const ROUNDS = Number(args.rounds)
const KEYS = Number(args.keys)
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const SECRET = randomBytes(32).toString('base64')
const PREFIX = `obo-bench-l2:${process.pid}:`
const L1 = { maxEntries: 50_000, maxBytes: 128 * 1024 * 1024 }
const COMMAND_TIMEOUT_MS = 2000
const CHUNK = 100

/** The raw side: the same derivation and value format as CacheCipher, with no checks beyond GCM's. */
function rawOpener (secret: string): (stored: string, associatedData: string) => unknown {
  const ikm = Buffer.from(secret, 'utf8')
  const key = Buffer.from(hkdfSync('sha256', ikm, Buffer.from('obo-gateway token cache', 'utf8'), 'aes-256-gcm key', 32))
  return (stored, associatedData) => {
    const raw = Buffer.from(stored.slice(stored.lastIndexOf('.') + 1), 'hex')
    const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12), { authTagLength: 16 })
    decipher.setAAD(Buffer.from(associatedData, 'utf8'))
    decipher.setAuthTag(raw.subarray(12, 28))
    return JSON.parse(Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8'))
  }
}

async function main (): Promise<void> {
  const l2 = (): L2Redis => new L2Redis({ url: REDIS_URL, encryptionKey: SECRET, commandTimeoutMs: COMMAND_TIMEOUT_MS, keyPrefix: PREFIX })
  const writerL2 = l2()
  const readerL2 = l2()
  if (!await writerL2.ready(5000) || !await readerL2.ready(5000)) throw new Error(`Redis does not answer at ${REDIS_URL}`)
  const writer = new TokenCache({ l1: L1, l2: writerL2 })
  const keys = Array.from({ length: KEYS }, (_, i) => hash('sha256', `bench-user-${i}`, 'hex'))
  // A downstream token of the size Entra issues (1,115 characters in bench:cache).
  const token = `eyJ${randomBytes(830).toString('base64url')}`
  const expiresOn = new Date(Date.now() + 3600_000)
  for (const key of keys) await writer.get(key, async () => ({ accessToken: token, expiresOn }))

  const raw: Redis | Cluster = connectRedis(REDIS_URL, COMMAND_TIMEOUT_MS)
  // Its offline queue is off, as the gateway's: no command before the connection is up.
  if (raw.status !== 'ready') await new Promise((resolve) => raw.once('ready', resolve))
  const open = rawOpener(SECRET)
  const valueKeys = keys.map((k) => readerL2.valueKey(k))
  const stored = await raw.get(valueKeys[0]!)
  if (stored === null) throw new Error('the writer stored nothing')
  // The associated data is the Redis key, as CacheCipher binds it: checked here by decrypting once.
  open(stored, valueKeys[0]!)

  const noAcquisition = async (): Promise<never> => { throw new Error('an L2 hit must not acquire') }
  // Built before its batch is timed: an L1 preallocates its LRU's slots (11 µs a lookup if counted).
  const freshReader = (): TokenCache => new TokenCache({ l1: L1, l2: readerL2 })
  const l2Lookups = async (reader: TokenCache, from: number, to: number): Promise<number> => {
    for (let i = from; i < to; i++) {
      const found = await reader.get(keys[i]!, noAcquisition)
      if (found.source !== 'l2') throw new Error(`expected an L2 hit, got ${found.source}`)
    }
    return to - from
  }
  const rawLookups = async (from: number, to: number): Promise<number> => {
    for (let i = from; i < to; i++) {
      const value = await raw.get(valueKeys[i]!)
      if (value === null) throw new Error('missing value')
      open(value, valueKeys[i]!)
    }
    return to - from
  }
  const l2Batch = async (reader: TokenCache): Promise<number> => await l2Lookups(reader, 0, keys.length)
  // A round alternates the two sides every CHUNK lookups and adds up each side's CPU: a burst of
  // other work on the machine then lands on both sides alike instead of on one side's batch.
  const measureRound = async (reader: TokenCache): Promise<[number, number]> => {
    let l2Us = 0
    let rawUs = 0
    for (let from = 0; from < keys.length; from += CHUNK) {
      const to = Math.min(keys.length, from + CHUNK)
      l2Us += await cpuPerOp(async () => await l2Lookups(reader, from, to)) * (to - from)
      rawUs += await cpuPerOp(async () => await rawLookups(from, to)) * (to - from)
    }
    return [l2Us / keys.length, rawUs / keys.length]
  }

  console.log(`node ${process.version}; Redis at ${REDIS_URL}; ${ROUNDS} interleaved rounds of ${KEYS} lookups each, one at a time; ${loadLine()} at start`)
  await measureRound(freshReader())
  console.log('\n| round | L2 hit (TokenCache, L1 empty) | raw GET + AES-GCM decrypt + JSON.parse | L2 ÷ raw |')
  console.log('|---:|---:|---:|---:|')
  const hits: number[] = []
  const raws: number[] = []
  for (let round = 1; round <= ROUNDS; round++) {
    const reader = freshReader()
    const [h, r] = await measureRound(reader)
    hits.push(h)
    raws.push(r)
    console.log(`| ${round} | ${h.toFixed(1)} µs | ${r.toFixed(1)} µs | ${(h / r).toFixed(2)} |`)
  }
  console.log(`| median | ${median(hits).toFixed(1)} µs | ${median(raws).toFixed(1)} µs | |`)
  console.log(`\nL2 hit ÷ raw, round by round: ${formatRatios(roundRatios(hits, raws))}   goal ≤ 1.20; ${loadLine()} at end`)
  if (args.profile) {
    const session = new Session()
    session.connect()
    await session.post('Profiler.enable')
    await session.post('Profiler.setSamplingInterval', { interval: 50 })
    let ops = 0
    const readers = Array.from({ length: 5 }, freshReader)
    await session.post('Profiler.start')
    for (const reader of readers) ops += await l2Batch(reader)
    const { profile } = await session.post('Profiler.stop')
    const file = join(tmpdir(), `bench-l2-${process.pid}.cpuprofile`)
    writeFileSync(file, JSON.stringify(profile))
    console.log(`\n### CPU profile of the L2 hits (${ops} lookups, ${file})`)
    printSummary(summariseProfile('L2 hit', file, ops))
  }
  await Promise.all(valueKeys.map(async (k) => await raw.del(k)))
  raw.disconnect()
  await writer.close()
  await readerL2.close()
}

main().catch((err: unknown) => { console.error(err); process.exitCode = 1 })
