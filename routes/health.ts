import type { FastifyPluginAsync } from 'fastify'

/** Liveness only for now: answers while the process can serve HTTP at all. */
const health: FastifyPluginAsync = async (fastify) => {
  fastify.get('/healthz', async () => ({ status: 'ok' }))
}

export default health
