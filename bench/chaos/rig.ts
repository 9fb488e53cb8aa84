import { cpus, loadavg } from 'node:os'
import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { randomUUID } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { Pool, type Dispatcher } from 'undici'
import { buildGateway } from '../../src/app'
import { resolveConfig } from '../../src/config/load'
import { devGatewayIdentity } from '../../src/dev/dev-identity'
import { DEV_IDS, startEmulator, type EmulatorOptions, type RunningEmulator } from '../../src/emulator'
import { SAMPLE_USER_ROUTE } from '../lib/sample-route'
import { jwtClaims, SeedClients } from '../lib/sign-in'

/** The emulator, with Alice signed in through msal-node, and a way to mint tokens of other users. */
export interface Identity {
  emulator: RunningEmulator
  alice: string
  /** A token like Alice's for a new user (new oid): the gateway has no OBO token cached for it. */
  newUser: () => string
  close: () => Promise<void>
}

export async function startIdentity (options: EmulatorOptions = {}): Promise<Identity> {
  const emulator = await startEmulator(options)
  const clients = new SeedClients(emulator)
  const alice = await clients.aliceToken()
  await clients.close()
  const claims = jwtClaims(alice)
  const newUser = (): string => {
    const now = Math.floor(Date.now() / 1000)
    const oid = randomUUID()
    return emulator.keys.sign(DEV_IDS.tenantId, { ...claims, oid, sub: oid, iat: now, nbf: now - 5, exp: now + 3 * 3600, uti: randomUUID() })
  }
  return { emulator, alice, newUser, close: () => emulator.close() }
}

/**
 * The gateway's configuration file contents for a run: one route /api to `upstream`, overload
 * shedding off (the load generator shares the machine; a shed request would be counted as a
 * failure of what is being tested).
 */
export function gatewayConfig (emulator: RunningEmulator, upstream: string, extra: { identity?: Record<string, unknown>, route?: Record<string, unknown>, tokenCache?: Record<string, unknown> } = {}): Record<string, unknown> {
  return {
    server: { host: '127.0.0.1', port: 0, overload: { maxEventLoopDelayMs: 0 } },
    identity: { ...devGatewayIdentity(emulator), ...extra.identity },
    routes: [{ prefix: '/api', upstream, user: SAMPLE_USER_ROUTE, ...extra.route }],
    ...(extra.tokenCache === undefined ? {} : { tokenCache: extra.tokenCache })
  }
}

/** A gateway in this process (scenarios that do not measure the gateway's own process). */
export async function startLocalGateway (config: Record<string, unknown>, setup?: (app: FastifyInstance) => void): Promise<{ app: FastifyInstance, url: string }> {
  const app = await buildGateway(resolveConfig(config, { source: 'chaos' }))
  setup?.(app)
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  return { app, url }
}

export interface Outcome {
  requests: number
  byStatus: Map<string, number>
  latencies: number[]
}

/** Counts per status ('error: <code>' when no answer came), and every latency in ms. */
export class Tally implements Outcome {
  requests = 0
  byStatus = new Map<string, number>()
  latencies: number[] = []

  add (status: string, ms: number): void {
    this.requests++
    this.byStatus.set(status, (this.byStatus.get(status) ?? 0) + 1)
    this.latencies.push(ms)
  }

  count (predicate: (status: string) => boolean): number {
    let n = 0
    for (const [status, c] of this.byStatus) if (predicate(status)) n += c
    return n
  }

  summaryP99 (): number {
    return percentile(this.latencies, 99)
  }

  summary (): string {
    const statuses = [...this.byStatus].sort(([a], [b]) => a.localeCompare(b)).map(([s, n]) => `${s}: ${n.toLocaleString('en-US')}`).join(', ')
    return `${this.requests.toLocaleString('en-US')} requests (${statuses}); latency p50 ${percentile(this.latencies, 50)} ms, p99 ${percentile(this.latencies, 99)} ms, max ${percentile(this.latencies, 100)} ms`
  }
}

export function percentile (values: number[], p: number): number {
  if (values.length === 0) return 0
  const sorted = [...values].sort((a, b) => a - b)
  return Math.round(sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0)
}

export interface Shot {
  path?: string
  token?: string
  method?: 'GET' | 'POST'
  headers?: Record<string, string>
  /** performance.now() before which it is not sent (pacing). */
  delayUntil?: number
}

/** One request through `dispatcher`; the status, or the client-side error's code, and how long it took. */
export async function shoot (dispatcher: Dispatcher, shot: Shot, timeoutMs = 30_000): Promise<{ status: string, ms: number }> {
  const started = performance.now()
  try {
    const res = await dispatcher.request({
      method: shot.method ?? 'GET',
      path: shot.path ?? '/api/items',
      headers: { ...(shot.token === undefined ? {} : { authorization: `Bearer ${shot.token}` }), ...shot.headers },
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs
    })
    // Read to the end: dump() would hide an answer cut off after its headers.
    try {
      await pipeline(res.body, new Writable({ write (_chunk, _encoding, done) { done() } }))
    } catch {
      return { status: `${res.statusCode}, body cut off`, ms: performance.now() - started }
    }
    return { status: String(res.statusCode), ms: performance.now() - started }
  } catch (err) {
    return { status: `error ${(err as { code?: string }).code ?? (err as Error).name}`, ms: performance.now() - started }
  }
}

/** `concurrency` loops sending `next()` until `seconds` have passed (or `next` returns undefined). */
export async function drive (url: string, options: {
  seconds: number
  concurrency: number
  next: (i: number) => Shot | undefined
  tally?: Tally
  onResult?: (status: string, ms: number) => void
  timeoutMs?: number
}): Promise<Tally> {
  const tally = options.tally ?? new Tally()
  const pool = new Pool(url, { connections: options.concurrency })
  const until = performance.now() + options.seconds * 1000
  let i = 0
  await Promise.all(Array.from({ length: options.concurrency }, async () => {
    while (performance.now() < until) {
      const shot = options.next(i++)
      if (shot === undefined) return
      if (shot.delayUntil !== undefined) {
        if (shot.delayUntil > until) return
        await sleep(shot.delayUntil - performance.now())
      }
      const { status, ms } = await shoot(pool, shot, options.timeoutMs)
      tally.add(status, ms)
      options.onResult?.(status, ms)
    }
  }))
  await pool.close()
  return tally
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** A heading and its figures, as every scenario prints them, with how busy the machine was (latencies depend on it). */
export function report (title: string, lines: string[]): void {
  console.log(`\n## ${title}`)
  for (const line of lines) console.log(`  ${line}`)
  console.log(`  machine: ${cpus().length} cores, load average ${loadavg().map((l) => l.toFixed(1)).join(' / ')} (1 / 5 / 15 min) at the end`)
}
