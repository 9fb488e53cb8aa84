/**
 * Validations per second on one core, three ways, in one run:
 *   - a repeated token (the verified-token cache answers),
 *   - a stream of distinct valid tokens (full path: decode, issuer policy, key lookup, RS256),
 *   - crypto.verify alone on the same tokens (the limit for the full path),
 * plus Fastify's own cost for the same request with no authentication, so ratios can be read
 * against both. Run: npm run bench:validation
 */
import { createPublicKey, verify } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify from 'fastify'
import entraAuth from '../plugins/entra-auth'
import { DEV_IDS, startEmulator } from '../src/emulator'
import { verificationKeys } from '../src/validation/jwk'
import { createHttpsAgent } from '../src/net/https-agent'
import { fetchJson } from '../src/net/fetch-json'

const DISTINCT = 20_000
const DURATION_MS = 2_000
const ROUNDS = 5

async function rate (op: (i: number) => Promise<unknown> | unknown): Promise<number> {
  for (let i = 0; i < 2000; i++) await op(i)
  let count = 0
  const start = process.hrtime.bigint()
  const end = start + BigInt(DURATION_MS) * 1_000_000n
  while (process.hrtime.bigint() < end) {
    for (let j = 0; j < 200; j++) await op(count++)
  }
  return count / (Number(process.hrtime.bigint() - start) / 1e9)
}

/** Interleaved rounds, median of each case: the machine's noise hits every case alike. */
async function measureAll (cases: Array<[string, (i: number) => Promise<unknown> | unknown]>): Promise<number[]> {
  const results: number[][] = cases.map(() => [])
  for (let round = 0; round < ROUNDS; round++) {
    for (const [index, [, op]] of cases.entries()) results[index]!.push(await rate(op))
  }
  return results.map((rates, index) => {
    const median = [...rates].sort((a, b) => a - b)[Math.floor(rates.length / 2)]!
    console.log(`${cases[index]![0].padEnd(48)} ${Math.round(median).toString().padStart(9)} /s  (${(1e6 / median).toFixed(1)} µs each)`)
    return median
  })
}

async function main (): Promise<void> {
  const emulator = await startEmulator({ dataDir: mkdtempSync(join(tmpdir(), 'obo-bench-')) })
  const agent = createHttpsAgent({ ca: [emulator.caPem] })
  const app = Fastify()
  await app.register(entraAuth, { instance: emulator.url, tenantId: DEV_IDS.tenantId, audiences: [DEV_IDS.gateway.clientId], dispatcher: agent })
  app.get('/auth', async (request) => { await app.entraAuthenticate(request); return 'ok' })
  app.get('/open', async () => 'ok')
  await app.ready()

  const now = Math.floor(Date.now() / 1000)
  const base = {
    aud: DEV_IDS.gateway.clientId,
    iss: `${emulator.url}/${DEV_IDS.tenantId}/v2.0`,
    tid: DEV_IDS.tenantId,
    oid: DEV_IDS.alice.objectId,
    azp: DEV_IDS.devClient.clientId,
    scp: 'access_as_user',
    ver: '2.0',
    iat: now,
    nbf: now,
    exp: now + 3600
  }
  const tokens = Array.from({ length: DISTINCT }, (_, i) => emulator.keys.sign(DEV_IDS.tenantId, { ...base, uti: `u${i}` }))
  const keys = verificationKeys(await fetchJson(`${emulator.url}/${DEV_IDS.tenantId}/discovery/v2.0/keys`, agent))
  const publicKey = createPublicKey([...keys.values()][0]!.pem)

  const call = async (path: string, token?: string): Promise<void> => {
    const res = await app.inject({ method: 'GET', url: path, headers: token ? { authorization: `Bearer ${token}` } : {} })
    if (res.statusCode !== 200) throw new Error(`${path}: ${res.statusCode} ${res.body}`)
  }

  console.log(`node ${process.version}, ${ROUNDS} interleaved rounds of ${DURATION_MS / 1000} s per case (medians), ${DISTINCT} distinct tokens`)
  const [open, hit, full, rsa] = await measureAll([
    ['Fastify inject, no authentication, same header', () => call('/open', tokens[0])],
    ['validation, repeated token (cache hit)', () => call('/auth', tokens[0])],
    ['validation, distinct tokens (full RS256 path)', (i) => call('/auth', tokens[i % DISTINCT])],
    ['crypto.verify alone on the same tokens', (i) => {
      const token = tokens[i % DISTINCT]!
      const dot = token.lastIndexOf('.')
      if (!verify('RSA-SHA256', Buffer.from(token.slice(0, dot)), publicKey, Buffer.from(token.slice(dot + 1), 'base64url'))) throw new Error('bad signature')
    }]
  ]) as [number, number, number, number]
  console.log('')
  const cost = (rateWith: number): number => 1e6 / rateWith - 1e6 / open
  console.log(`validation cost per request: cache hit ${cost(hit).toFixed(1)} µs, full path ${cost(full).toFixed(1)} µs, crypto.verify alone ${(1e6 / rsa).toFixed(1)} µs`)
  console.log(`cache hit vs full path: ${(cost(full) / cost(hit)).toFixed(1)}x cheaper`)
  console.log(`full path vs crypto.verify alone: ${(cost(full) / (1e6 / rsa)).toFixed(2)}x (1.00 = only the RSA check costs anything)`)
  await app.close()
  await agent.close()
  await emulator.close()
}

main().catch((err) => { console.error(err); process.exitCode = 1 })
