import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { BadRequestError, BadRequestPathError, InternalError, type KnownGatewayError } from '../errors'
import { errorResponse } from '../http/error-response'
import type { ChallengeContext } from '../http/error-table'

/**
 * Fastify's `frameworkErrors`: what its router refuses before any hook runs (a path that is not
 * valid percent-encoding, a target that is no path at all, a route parameter over maxParamLength, an
 * async constraint that failed) gets the JSON error body, `client-request-id` and the request's log
 * line like every other answer. Fastify's own body, and its error's message, quote the whole URL,
 * query string included: neither is used.
 */
export function frameworkErrorHandler (ctx: ChallengeContext): (err: FastifyError, request: FastifyRequest, reply: FastifyReply) => void {
  return (err, request, reply) => {
    const known = routerError(err, request.raw.url ?? '')
    const res = errorResponse(known, ctx, request.id)
    // No onRequest hook ran to set it.
    reply.code(res.status).headers({ ...res.headers, 'client-request-id': request.id }).send(res.body)
    request.server.recordUnroutedAnswer(request, res.status, { code: err.code, error: known.message })
  }
}

function routerError (err: FastifyError, url: string): KnownGatewayError {
  switch (err.code) {
    case 'FST_ERR_BAD_URL':
      return new BadRequestPathError(url.startsWith('/') ? 'The path is not valid percent-encoding' : 'The request target is not a path')
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new BadRequestError('A path parameter is longer than the gateway accepts', 414)
    default:
      return new InternalError()
  }
}
