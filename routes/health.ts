import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import { gatewayReadiness } from '../src/server/readiness'

/**
 * /healthz: the process serves HTTP. /readyz: whether requests can be served (src/server/readiness.ts),
 * 503 only when they cannot.
 * /metrics: Prometheus text. Registered on the gateway itself or on its admin app (`gateway` is
 * where the state lives either way).
 */
const health: FastifyPluginAsync<{ gateway: FastifyInstance }> = async (fastify, { gateway }) => {
  // Load balancers and Prometheus poll these; one log line each would drown the request log.
  const quiet = { logLevel: 'warn' as const }

  fastify.get('/healthz', quiet, async () => ({ status: 'ok' }))

  fastify.get('/readyz', quiet, async (_request, reply) => {
    const { status, checks } = await gatewayReadiness(gateway)
    return await reply.code(status === 'not_ready' ? 503 : 200).send({ status, checks })
  })

  fastify.get('/metrics', quiet, async (_request, reply) => {
    const { registry } = gateway.metrics
    return await reply.type(registry.contentType).send(await registry.metrics())
  })
}

export default health
