import type { FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import type { IdentityConfig } from '../src/config/types'
import { ConfidentialClients } from '../src/acquisition/confidential-clients'
import { createMsalNetworkClient } from '../src/acquisition/msal-network-client'
import { TokenAcquirer } from '../src/acquisition/token-acquirer'
import { createHttpsAgent } from '../src/net/https-agent'

declare module 'fastify' {
  interface FastifyInstance {
    tokenAcquirer: TokenAcquirer
  }
}

const tokenAcquisition: FastifyPluginAsync<{ identity: IdentityConfig }> = async (fastify, { identity }) => {
  const agent = createHttpsAgent({ ca: identity.extraCaPems })
  const clients = new ConfidentialClients(identity, createMsalNetworkClient(agent), fastify.log)
  fastify.decorate('tokenAcquirer', new TokenAcquirer(clients, identity.tenantId))
  fastify.addHook('onClose', async () => { await agent.close() })
}

export default fp(tokenAcquisition, { name: 'obo-gateway-token-acquisition', fastify: '5.x' })
