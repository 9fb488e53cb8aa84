import type { FastifyBaseLogger } from 'fastify'

/** A logger that drops everything, as Fastify's is when `logger` is off (the benches' gateways). */
export const SILENT_LOG: FastifyBaseLogger = {
  level: 'silent',
  fatal: () => {},
  error: () => {},
  warn: () => {},
  info: () => {},
  debug: () => {},
  trace: () => {},
  silent: () => {},
  child: () => SILENT_LOG
}
