import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { IdentityCall } from '../acquisition/msal-network-client'
import type { TokenCacheCounters } from '../acquisition/token-cache'
import { CounterFamily, HistogramFamily, type HistogramSeries } from './request-metrics'

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

/**
 * The gateway's Prometheus metrics, in a registry of its own (several gateways in one process, as in
 * tests, must not share counters). Counters the token cache keeps itself are read at scrape time.
 */
export class GatewayMetrics {
  readonly registry = new Registry()
  /** Recorded on every request: resolve a series once (`.series(labels)`), then count on it. */
  readonly requests: CounterFamily
  readonly requestDuration: HistogramFamily
  readonly upstreamDuration: HistogramFamily
  readonly entraDuration: Histogram<'endpoint' | 'outcome'>
  readonly entraErrors: Counter<'code'>
  readonly validationFailures: Counter<'reason'>
  readonly claimsChallenges: Counter<'kind'>
  readonly jwksFetches: Counter<'tenant' | 'outcome'>

  constructor (tokenCache?: () => TokenCacheCounters) {
    const registers = [this.registry]
    // prom-client's own names already start with process_ or nodejs_: obo_gateway_process_cpu_user_seconds_total.
    collectDefaultMetrics({ register: this.registry, prefix: 'obo_gateway_' })
    const registry = this.registry
    this.requests = new CounterFamily({ name: 'obo_gateway_requests_total', help: 'Requests answered, by route pattern, method and status', labelNames: ['route', 'method', 'status'], registry })
    this.requestDuration = new HistogramFamily({ name: 'obo_gateway_request_duration_seconds', help: 'Whole request time, by route pattern and method', labelNames: ['route', 'method'], buckets: LATENCY_BUCKETS, registry })
    this.upstreamDuration = new HistogramFamily({ name: 'obo_gateway_upstream_duration_seconds', help: 'Time to the upstream\'s response headers, by route and status (or error)', labelNames: ['route', 'outcome'], buckets: LATENCY_BUCKETS, registry })
    this.entraDuration = new Histogram({ name: 'obo_gateway_entra_request_duration_seconds', help: 'Calls to the identity provider, by endpoint and HTTP status (or timeout/unreachable)', labelNames: ['endpoint', 'outcome'], buckets: LATENCY_BUCKETS, registers })
    this.entraErrors = new Counter({ name: 'obo_gateway_entra_errors_total', help: 'Error answers from the identity provider, by AADSTS code', labelNames: ['code'], registers })
    this.validationFailures = new Counter({ name: 'obo_gateway_token_validation_failures_total', help: 'Incoming tokens refused, by reason', labelNames: ['reason'], registers })
    this.claimsChallenges = new Counter({ name: 'obo_gateway_claims_challenges_total', help: 'Challenges sent to clients, by kind', labelNames: ['kind'], registers })
    this.jwksFetches = new Counter({ name: 'obo_gateway_jwks_fetches_total', help: 'Signing key set fetches, by tenant and outcome', labelNames: ['tenant', 'outcome'], registers })

    if (tokenCache !== undefined) {
      const pulled = (name: string, help: string, read: (c: TokenCacheCounters) => Array<[Record<string, string>, number]>, labelNames: string[] = []): void => {
        // eslint-disable-next-line no-new
        new Gauge({
          name,
          help,
          labelNames,
          registers,
          collect () {
            const counters = tokenCache()
            for (const [labels, value] of read(counters)) this.set(labels, value)
          }
        })
      }
      pulled('obo_gateway_token_cache_lookups', 'Token cache lookups since start, by layer and result', (c) => [
        [{ layer: 'l1', result: 'hit' }, c.hits.l1], [{ layer: 'l1', result: 'miss' }, c.misses.l1],
        [{ layer: 'l2', result: 'hit' }, c.hits.l2], [{ layer: 'l2', result: 'miss' }, c.misses.l2]
      ], ['layer', 'result'])
      pulled('obo_gateway_token_cache_single_flight_waits', 'Requests since start that waited for an acquisition already under way (in process) or held by another instance (lock)', (c) => [
        [{ scope: 'process' }, c.singleFlightWaits], [{ scope: 'instances' }, c.lockWaits]
      ], ['scope'])
      pulled('obo_gateway_token_acquisitions', 'Token acquisitions from Entra since start', (c) => [[{}, c.acquisitions]])
      pulled('obo_gateway_redis_errors', 'Redis errors since start', (c) => [[{}, c.redisErrors]])
    }
  }

  /** Records upstream latency for one route; label children are kept, as a route has few outcomes. */
  upstreamObserver (route: string): (outcome: number | 'error', seconds: number) => void {
    const children = new Map<number | 'error', HistogramSeries>()
    return (outcome, seconds) => {
      let child = children.get(outcome)
      if (child === undefined) {
        child = this.upstreamDuration.series({ route, outcome: String(outcome) })
        children.set(outcome, child)
      }
      child.observe(seconds)
    }
  }

  /** For the msal network client: every call to the identity provider. */
  identityCall (call: IdentityCall): void {
    this.entraDuration.observe({ endpoint: call.endpoint, outcome: String(call.outcome) }, call.durationMs / 1000)
    if (call.aadsts !== undefined) this.entraErrors.inc({ code: `AADSTS${call.aadsts}` })
  }
}
