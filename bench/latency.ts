/**
 * Latency the gateway adds (issue #15): p50/p99 of small-JSON requests at a fixed rate — half of
 * what reply-from sustains here, measured first in the same run — through the gateway, through a
 * plain @fastify/reply-from proxy and to the upstream directly. Open loop: requests leave on a
 * schedule whatever the answers do, and each latency counts from its scheduled time, so a stall
 * shows up in the percentiles instead of slowing the load down. Microsecond resolution.
 * Interleaved rounds, every round printed; added = gateway − direct of the same round.
 *
 *   npm run bench:latency [-- --rounds 5 --seconds 10]
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Pool } from 'undici'
import { DEV_IDS, startEmulator } from '../src/emulator'
import { devGatewayIdentity } from '../src/dev/dev-identity'
import { startNodeServer, type NodeServer } from './lib/children'
import { LOAD_CPU } from './lib/cpu'
import { check, load } from './lib/load'
import { PAYLOADS } from './lib/payloads'
import { median } from './lib/report'
import { loadLine } from './lib/rounds'
import { SeedClients } from './lib/sign-in'

const { values: args } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, seconds: { type: 'string', default: '10' } } })
const ROUNDS = Number(args.rounds)
const SECONDS = Number(args.seconds)
const SMALL = PAYLOADS[0]!

function percentile (sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!
}

/** `rate` requests a second for `seconds`, on schedule; latencies in µs from each scheduled time. */
async function fixedRate (url: string, token: string, rate: number, seconds: number): Promise<{ p50: number, p99: number, late: number }> {
  const origin = new URL(url)
  const pool = new Pool(origin.origin, { connections: 256, pipelining: 1 })
  const latencies: number[] = []
  const pending: Array<Promise<void>> = []
  const start = process.hrtime.bigint()
  const total = Math.round(rate * seconds)
  const intervalNs = 1e9 / rate
  let sent = 0
  let failures = 0
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const elapsed = Number(process.hrtime.bigint() - start)
      while (sent < total && sent * intervalNs <= elapsed) {
        const scheduled = start + BigInt(Math.round(sent * intervalNs))
        sent++
        pending.push(pool.request({ path: SMALL.path, method: 'GET', headers: { authorization: `Bearer ${token}` } }).then(async (res) => {
          await res.body.dump()
          if (res.statusCode !== 200) failures++
          latencies.push(Number(process.hrtime.bigint() - scheduled) / 1000)
        }, () => { failures++ }))
      }
      if (sent < total) setImmediate(tick)
      else resolve()
    }
    tick()
  })
  await Promise.all(pending)
  await pool.close()
  if (failures > 0) throw new Error(`${url}: ${failures} failed requests`)
  latencies.sort((a, b) => a - b)
  // Requests whose latency exceeded one second: the rate was more than the target could take.
  return { p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), late: latencies.filter((l) => l > 1e6).length }
}

async function main (): Promise<void> {
  const emulator = await startEmulator({ dataDir: mkdtempSync(join(tmpdir(), 'obo-bench-')) })
  const clients = new SeedClients(emulator)
  const servers: NodeServer[] = []
  try {
    const token = await clients.aliceToken()
    const upstream = await startNodeServer('upstream', 'upstream', [], LOAD_CPU)
    servers.push(upstream)
    const config = JSON.stringify({
      identity: devGatewayIdentity(emulator),
      routes: [{ prefix: '/api', upstream: upstream.url, user: { requireScopes: ['access_as_user'], scopes: [`${DEV_IDS.sampleApi.identifierUri}/Items.Read`] } }]
    })
    const gateway = await startNodeServer('gateway', 'gateway', [config], LOAD_CPU)
    const plain = await startNodeServer('reply-from', 'reply-from', [upstream.url], LOAD_CPU)
    servers.push(gateway, plain)
    const targets: Array<[string, string]> = [['direct', upstream.url], ['reply-from', plain.url], ['gateway', gateway.url]]
    for (const [, url] of targets) await check(url, SMALL, token)

    await load(plain.url, SMALL, token, 2)
    const saturation = await load(plain.url, SMALL, token, 5)
    const rate = Math.max(10, Math.round(saturation.requests.total / saturation.duration / 2))
    console.log(`node ${process.version}; reply-from saturates at ${Math.round(saturation.requests.total / saturation.duration)} req/s (autocannon, 50 connections, 5 s); fixed rate ${rate} req/s, ${SECONDS} s per target, ${ROUNDS} interleaved rounds, small JSON; ${loadLine()} at start`)
    console.log('\n| round | direct p50 / p99 | reply-from p50 / p99 | gateway p50 / p99 | gateway added p50 / p99 | reply-from added p50 / p99 |')
    console.log('|---:|---:|---:|---:|---:|---:|')
    const addedP99: number[] = []
    const addedP50: number[] = []
    for (let round = 1; round <= ROUNDS; round++) {
      const r: Record<string, { p50: number, p99: number, late: number }> = {}
      for (const [name, url] of targets) {
        await fixedRate(url, token, rate, 1)
        r[name] = await fixedRate(url, token, rate, SECONDS)
      }
      const ms = (us: number): string => (us / 1000).toFixed(2)
      const { direct, gateway: g, 'reply-from': p } = r as Record<'direct' | 'gateway' | 'reply-from', { p50: number, p99: number, late: number }>
      addedP50.push(g.p50 - direct.p50)
      addedP99.push(g.p99 - direct.p99)
      const late = Object.entries(r).filter(([, v]) => v.late > 0).map(([k, v]) => `${k} ${v.late} over 1 s`).join(', ')
      console.log(`| ${round} | ${ms(direct.p50)} / ${ms(direct.p99)} ms | ${ms(p.p50)} / ${ms(p.p99)} ms | ${ms(g.p50)} / ${ms(g.p99)} ms | ${ms(g.p50 - direct.p50)} / ${ms(g.p99 - direct.p99)} ms | ${ms(p.p50 - direct.p50)} / ${ms(p.p99 - direct.p99)} ms |${late === '' ? '' : ` ${late}`}`)
    }
    console.log(`\ngateway added, medians of the rounds: p50 ${(median(addedP50) / 1000).toFixed(2)} ms, p99 ${(median(addedP99) / 1000).toFixed(2)} ms (goal p99 ≤ 2 ms); ${loadLine()} at end`)
  } finally {
    for (const server of servers.reverse()) await server.stop()
    await clients.close()
    await emulator.close()
  }
}

main().catch((err: unknown) => { console.error(err); process.exit(1) })
