import type { FastifyInstance, FastifyPluginAsync } from 'fastify'

type CheckStatus = 'ok' | 'degraded' | 'failed'

interface Check {
  status: CheckStatus
  detail?: string
}

/**
 * /healthz: the process serves HTTP. /readyz: whether requests can be served, part by part:
 * the identity provider's metadata and keys, the gateway's own credential, the shared token cache.
 * 503 only when requests cannot be served; a Redis outage only degrades (L1 and Entra carry on).
 * /metrics: Prometheus text. Registered on the gateway itself or on its admin app (`gateway` is
 * where the state lives either way).
 */
const health: FastifyPluginAsync<{ gateway: FastifyInstance }> = async (fastify, { gateway }) => {
  // Load balancers and Prometheus poll these; one log line each would drown the request log.
  const quiet = { logLevel: 'warn' as const }

  fastify.get('/healthz', quiet, async () => ({ status: 'ok' }))

  fastify.get('/readyz', quiet, async (_request, reply) => {
    const trust = await gateway.entraStatus({ refresh: true })
    const tenantsMissing = Object.entries(trust.keys).filter(([, s]) => s === 'not_loaded').map(([t]) => t)
    // Stale keys still validate known kids, but a key published since cannot be learned: 503s for its tokens.
    const tenantsStale = Object.entries(trust.keys).filter(([, s]) => s === 'stale').map(([t]) => t)
    const identity: Check = trust.metadata !== 'loaded'
      ? { status: 'failed', detail: trust.lastError ?? 'OpenID metadata not loaded yet' }
      : tenantsMissing.length > 0
        ? { status: 'degraded', detail: `signing keys not loaded for ${tenantsMissing.join(', ')}` }
        : tenantsStale.length > 0
          ? { status: 'degraded', detail: `signing keys of ${tenantsStale.join(', ')} could not be refreshed (${trust.lastError ?? 'unknown error'}); the last good keys stay in use` }
          : { status: 'ok' }
    const problem = await gateway.credentialCheck()
    const credential: Check = problem === undefined ? { status: 'ok' } : { status: 'failed', detail: problem }
    const l2 = gateway.tokenAcquirer.status().l2
    const tokenCache: Check = l2 === 'degraded'
      ? { status: 'degraded', detail: 'Redis unreachable: serving from the in-process cache and Entra' }
      : { status: 'ok', ...(l2 === 'disabled' ? { detail: 'no Redis configured' } : {}) }

    const checks = { identity, credential, tokenCache }
    const statuses = Object.values(checks).map((c) => c.status)
    const status = statuses.includes('failed') ? 'not_ready' : statuses.includes('degraded') ? 'degraded' : 'ready'
    return await reply.code(status === 'not_ready' ? 503 : 200).send({ status, checks })
  })

  fastify.get('/metrics', quiet, async (_request, reply) => {
    const { registry } = gateway.metrics
    return await reply.type(registry.contentType).send(await registry.metrics())
  })
}

export default health
