import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { correlationId } from '../http/correlation-id'
import type { ChallengeContext } from '../http/error-table'
import { clientErrorHandler } from './client-error'
import { frameworkErrorHandler } from './framework-errors'
import errorResponses from '../../plugins/error-responses'
import observability from '../../plugins/observability'

export interface AdminListenerOptions {
  /** The gateway's own logger configuration. */
  logger: FastifyServerOptions['logger']
  challengeContext: ChallengeContext
}

/**
 * The Fastify instance behind `server.adminPort`, in a single process and in the workers' primary,
 * before its routes are added. It answers as the gateway's main port does: unknown paths, failures
 * and malformed requests get the JSON error body and `client-request-id`, and each request is one
 * log line of the gateway's format instead of Fastify's two (none for routes whose logLevel is warn,
 * as the probes' are).
 */
export async function buildAdminListener (options: AdminListenerOptions): Promise<FastifyInstance> {
  const admin = Fastify({
    logger: options.logger ?? false,
    clientErrorHandler: clientErrorHandler(options.challengeContext),
    frameworkErrors: frameworkErrorHandler(options.challengeContext),
    genReqId: correlationId,
    logController: new LogController({ disableRequestLogging: true })
  })
  await admin.register(observability, {})
  await admin.register(errorResponses, options.challengeContext)
  return admin
}
