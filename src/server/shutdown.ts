import closeWithGrace from 'close-with-grace'
import type { FastifyInstance } from 'fastify'

/**
 * On a signal or a fatal error: stop accepting, let in-flight requests finish within `graceMs`,
 * then close Redis and the connection pools. Installed once listening: close-with-grace exits 0 on
 * 'beforeExit', which would hide a failed start.
 */
export function closeOnSignal (app: FastifyInstance, graceMs: number, onClosing?: () => void): ReturnType<typeof closeWithGrace> {
  return closeWithGrace({ delay: graceMs, logger: app.log }, async ({ signal, err }) => {
    onClosing?.()
    if (err) app.log.error({ err }, 'shutting down after an error')
    else app.log.info({ signal }, 'shutting down: finishing in-flight requests')
    await app.close()
  })
}
