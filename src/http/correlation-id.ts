import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'

// Ids we echo back and log must be short and inert: no control characters, no header injection.
const SAFE_ID = /^[A-Za-z0-9._:-]{1,128}$/

/** Fastify `genReqId`: the client's `client-request-id` when it is safe, a fresh UUID otherwise. */
export function correlationId (req: IncomingMessage): string {
  const given = req.headers['client-request-id']
  return typeof given === 'string' && SAFE_ID.test(given) ? given : randomUUID()
}
