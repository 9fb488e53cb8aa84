import fc from 'fast-check'
import { Pool } from 'undici'
import { DEV_IDS } from '../../../src/emulator'
import { hostileRequestArbitrary, judge, pathArbitrary, upstreamIndex, type HostileRequest } from '../../../test/helpers/hostile-requests'
import { startUpstreamRecorder } from '../../../test/helpers/upstream-recorder'
import { gatewayConfig, percentile, report, startIdentity, startLocalGateway } from '../rig'

/**
 * The fuzz test's generators and oracle (test/helpers/hostile-requests.ts) at volume: `requests`
 * hostile requests, 16 in flight, in batches drawn from `seed` (batch b uses seed + b, so a
 * failing batch replays alone); one in five a traversal path with the valid token.
 */
export async function fuzz (options: { requests: number, seed: number }): Promise<void> {
  const identity = await startIdentity()
  const recorder = await startUpstreamRecorder()
  const { app, url } = await startLocalGateway(gatewayConfig(identity.emulator, recorder.url))
  const pool = new Pool(url, { connections: 16 })
  const valid = identity.alice
  const material = { valid, sign: (claims: Record<string, unknown>) => identity.emulator.keys.sign(DEV_IDS.tenantId, claims) }
  const mixed = hostileRequestArbitrary(material)
  const paths = pathArbitrary().map((path): HostileRequest => ({ method: 'GET', path, headers: ['authorization', `Bearer ${valid}`] }))
  const upstream = upstreamIndex(recorder)
  const byStatus = new Map<number, number>()
  const violations: string[] = []
  const latencies: number[] = []
  let sent = 0
  let unsent = 0
  let forwarded = 0
  const started = performance.now()
  const batch = 1000
  for (let b = 0; sent + unsent < options.requests; b++) {
    const cases = fc.sample(b % 5 === 4 ? paths : mixed, { seed: options.seed + b, numRuns: Math.min(batch, options.requests - sent - unsent) })
    let next = 0
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (next < cases.length) {
        const i = next++
        const t0 = performance.now()
        const verdict = await judge(pool, cases[i]!, `${b}-${i}`, valid, upstream)
        if (verdict.unsent === true) { unsent++; continue }
        latencies.push(performance.now() - t0)
        sent++
        byStatus.set(verdict.status, (byStatus.get(verdict.status) ?? 0) + 1)
        if (verdict.reachedUpstream) forwarded++
        for (const v of verdict.violations) violations.push(`seed ${options.seed + b}, case ${i}: ${v} — ${JSON.stringify(cases[i]).slice(0, 400)}`)
      }
    }))
  }
  const seconds = (performance.now() - started) / 1000
  await pool.close()
  await app.close()
  await recorder.close()
  await identity.close()
  const statuses = [...byStatus].sort(([a], [b]) => a - b).map(([s, n]) => `${s}: ${n.toLocaleString('en-US')}`).join(', ')
  report(`fuzz: ${sent.toLocaleString('en-US')} hostile requests (seed ${options.seed})`, [
    `${sent.toLocaleString('en-US')} sent in ${seconds.toFixed(0)} s (${Math.round(sent / seconds)} req/s, 16 in flight); ${unsent} the client itself refused to send`,
    `statuses: ${statuses}`,
    `5xx: ${[...byStatus].filter(([s]) => s >= 500).reduce((n, [, c]) => n + c, 0)}`,
    `forwarded to the upstream: ${forwarded.toLocaleString('en-US')} (each with one valid token, the gateway's OBO token and a safe path)`,
    `oracle violations (invalid accepted or forwarded, unsafe path, 5xx, no JSON error, token or stack in a body): ${violations.length}`,
    `latency p50 ${percentile(latencies, 50)} ms, p99 ${percentile(latencies, 99)} ms`,
    ...violations.slice(0, 10)
  ])
  if (violations.length > 0) process.exitCode = 1
}
