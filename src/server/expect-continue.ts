import type { IncomingMessage, Server, ServerResponse } from 'node:http'

const waiting = new WeakSet<ServerResponse>()

/**
 * Node answers `Expect: 100-continue` the moment the headers arrive, before anything is checked,
 * inviting a client without a token to send its whole body only to be refused. With a
 * 'checkContinue' listener Node leaves the 100 to the server: the request goes on to Fastify like
 * any other and is invited by {@link sendContinue} once it has passed. Refused instead, it gets
 * its final answer without a 100, and Node closes that connection rather than read the body.
 */
export function deferContinue (server: Server): void {
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    waiting.add(res)
    server.emit('request', req, res)
  })
}

/** Sends the 100 Continue of a client that waits for it, once; does nothing for any other. */
export function sendContinue (res: ServerResponse): void {
  if (waiting.delete(res)) res.writeContinue()
}
