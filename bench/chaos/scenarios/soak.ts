import { startUpstreamRecorder } from '../../../test/helpers/upstream-recorder'
import { startGatewayChild } from '../gateway-child'
import type { GatewayStats } from '../gateway-process'
import { drive, gatewayConfig, report, sleep, startIdentity, Tally, type Shot } from '../rig'

const EVERY_SECONDS = 10
const MiB = 2 ** 20

export interface SoakOptions {
  minutes: number
  rate?: number
  /** Percent of requests from users never seen before (default 2). */
  newUsers?: number
  /**
   * tokenCache.l1.maxEntries for the gateway. Small, with many new users, the caches fill early
   * in the run: RSS must then stay flat, which tells a full cache from a leak.
   */
  l1Entries?: number
}

/**
 * Steady load on the gateway in its own process for `minutes` (default 10), paced at `rate`
 * requests per second so a shared machine stays usable: returning users (1,000 of them, OBO token
 * cached, each signed in once before the clock starts), `newUsers` % users never seen (an OBO call
 * each), 1 % invalid tokens. Every 10 s: requests, failures, the gateway's RSS and heap, its
 * event-loop delay (p50, p99, max), open sockets and L1 entries.
 */
export async function soak (options: SoakOptions): Promise<void> {
  const rate = options.rate ?? 300
  const newUsers = options.newUsers ?? 2
  if (!(newUsers >= 0 && newUsers <= 98)) throw new Error('--new-users is a percent from 0 to 98')
  const identity = await startIdentity()
  const recorder = await startUpstreamRecorder()
  const tokenCache = options.l1Entries === undefined ? {} : { tokenCache: { l1: { maxEntries: options.l1Entries } } }
  const gateway = await startGatewayChild(gatewayConfig(identity.emulator, recorder.url, tokenCache))
  const returning = Array.from({ length: 1000 }, identity.newUser)
  const invalid = `${identity.alice.slice(0, -4)}AAAA`
  const shot = (i: number): Shot => {
    const pick = i % 100
    if (pick === 0) return { token: invalid }
    if (pick <= newUsers) return { token: identity.newUser() }
    return { token: returning[i % returning.length] }
  }
  // Every returning user signed in once before the clock starts: the soak measures the steady state.
  const warmUp = await drive(gateway.url, { seconds: 600, concurrency: 8, next: (i) => i < returning.length ? { token: returning[i] } : undefined })
  const seconds = options.minutes * 60
  const started = performance.now()
  let window = new Tally()
  const rows: string[] = []
  const samples: GatewayStats[] = []
  const total = new Tally()
  await gateway.stats()
  const load = drive(gateway.url, {
    seconds,
    concurrency: 16,
    next: (i) => {
      const due = started + (i / rate) * 1000
      return { ...shot(i), delayUntil: due }
    },
    tally: total,
    onResult: (status, ms) => { window.add(status, ms) }
  })
  rows.push('| t | requests | req/s | not 2xx (401 expected: 1 %) | errors | p99 | RSS | heap used | loop delay p50 / p99 / max | client connections | TCP sockets | L1 entries |')
  rows.push('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
  for (let t = EVERY_SECONDS; t <= seconds; t += EVERY_SECONDS) {
    await sleep(started + t * 1000 - performance.now())
    const s = await gateway.stats()
    samples.push(s)
    const w = window
    window = new Tally()
    const not2xx = w.count((st) => !st.startsWith('2') && !st.startsWith('error'))
    const errors = w.count((st) => st.startsWith('error'))
    const line = `| ${t} s | ${w.requests.toLocaleString('en-US')} | ${Math.round(w.requests / EVERY_SECONDS)} | ${not2xx} | ${errors} | ${w.summaryP99()} ms | ${(s.rssBytes / MiB).toFixed(1)} MiB | ${(s.heapUsedBytes / MiB).toFixed(1)} MiB | ` +
      `${s.loopDelay.p50.toFixed(1)} / ${s.loopDelay.p99.toFixed(1)} / ${s.loopDelay.max.toFixed(1)} ms | ${s.connections} | ${s.resources.TCPSocketWrap ?? 0} | ${s.l1Entries.toLocaleString('en-US')} |`
    rows.push(line)
    console.error(line)
  }
  await load
  await gateway.stop()
  await recorder.close()
  const oboCalls = identity.emulator.records.tokenRequests().filter((r) => r.grantType.includes('jwt-bearer')).length
  await identity.close()
  const rss = samples.map((s) => s.rssBytes / MiB)
  const third = Math.max(1, Math.floor(rss.length / 3))
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length
  report(`soak: ${options.minutes} min at ${rate} req/s, ${newUsers} % new users${options.l1Entries === undefined ? '' : `, L1 bounded at ${options.l1Entries} entries`}`, [
    `warm-up (each returning user once): ${warmUp.summary()}`,
    ...rows,
    '',
    `total: ${total.summary()}`,
    `5xx: ${total.count((s) => s.startsWith('5'))}, client errors (no answer): ${total.count((s) => s.startsWith('error'))}, OBO calls: ${oboCalls.toLocaleString('en-US')}`,
    `RSS: first ${rss[0]?.toFixed(1)} MiB, last ${rss.at(-1)?.toFixed(1)} MiB, max ${Math.max(...rss).toFixed(1)} MiB; mean of the first third ${mean(rss.slice(0, third)).toFixed(1)} MiB, of the last third ${mean(rss.slice(-third)).toFixed(1)} MiB`,
    `event-loop delay: worst p99 of a window ${Math.max(...samples.map((s) => s.loopDelay.p99)).toFixed(1)} ms, worst max ${Math.max(...samples.map((s) => s.loopDelay.max)).toFixed(1)} ms`,
    `gateway log: ${gateway.logs.lines.toLocaleString('en-US')} lines, ${gateway.logs.errors} at error level, ${gateway.logs.withToken} with a token`
  ])
}
