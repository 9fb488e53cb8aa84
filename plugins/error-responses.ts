import type { FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import { GatewayError, RouteNotFoundError } from '../src/errors'
import { errorResponse } from '../src/http/error-response'
import type { ChallengeContext } from '../src/http/error-table'
import type { McpChallenge } from '../src/mcp/challenge'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Set on MCP routes: what their challenges add. */
    mcpChallenge?: McpChallenge
  }
}

// What an upstream answer's headers say about its body: wrong for an error body sent instead.
const UPSTREAM_BODY_HEADERS = ['content-type', 'content-length', 'content-encoding', 'content-range', 'content-disposition', 'content-language', 'etag', 'last-modified']

/**
 * Turns every error into DESIGN.md's JSON body and WWW-Authenticate challenge, echoes the
 * correlation id, and answers unknown paths with JSON. Expects Fastify's `genReqId` to be
 * `correlationId` so that request.id is the id the client sees.
 */
const errorResponses: FastifyPluginAsync<ChallengeContext> = async (fastify, ctx) => {
  fastify.addHook('onRequest', (request, reply, done) => {
    reply.header('client-request-id', request.id)
    done()
  })

  fastify.setNotFoundHandler(async (request) => {
    throw new RouteNotFoundError(`No route for ${request.method} ${request.url.split('?')[0] ?? ''}`)
  })

  fastify.setErrorHandler(async (err, request, reply) => {
    const res = errorResponse(err, ctx, request.id, request.routeOptions.config.mcpChallenge)
    // Client errors are in the request's own log line (plugins/observability); failures get their
    // own, with what the body leaves out.
    if (res.status >= 500) request.log.error({ err, code: (err as { code?: string }).code }, err instanceof GatewayError ? err.detail : res.body.error_description)
    else request.log.debug({ code: (err as { code?: string }).code, status: res.status }, res.body.error_description)
    // An upstream answer that broke off before anything was sent left its headers on the reply;
    // they describe its body, not this one.
    for (const name of UPSTREAM_BODY_HEADERS) reply.removeHeader(name)
    return await reply.code(res.status).headers(res.headers).send(res.body)
  })
}

export default fp(errorResponses, { name: 'obo-gateway-error-responses', fastify: '5.x' })
