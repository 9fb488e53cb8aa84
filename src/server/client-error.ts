import { randomUUID } from 'node:crypto'
import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import { BadRequestError, HeadersTooLargeError, RequestTimeoutError } from '../errors'
import { errorResponse } from '../http/error-response'
import type { ChallengeContext } from '../http/error-table'

/**
 * Fastify's `clientErrorHandler`: what Node's HTTP parser refuses before there is a request (a
 * header block over maxHeaderSize, a request not received within server.timeouts, bytes that are
 * not HTTP) gets the same JSON error body as everything else, then the connection closes.
 */
export function clientErrorHandler (ctx: ChallengeContext): (err: Error & { code?: string }, socket: Socket) => void {
  return (err, socket) => {
    // Nothing may be written once an answer has started (Node's own test: the socket's in-flight
    // response has sent its headers) or the peer is gone.
    const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage
    if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent === true) {
      socket.destroy(err)
      return
    }
    const res = errorResponse(asClientError(err), ctx, randomUUID())
    const body = JSON.stringify(res.body)
    const head = [
      `HTTP/1.1 ${res.status} ${STATUS_CODES[res.status] ?? ''}`,
      'content-type: application/json; charset=utf-8',
      `content-length: ${Buffer.byteLength(body)}`,
      `client-request-id: ${res.body.correlation_id}`
    ]
    // As Fastify's own handler does: write, then destroy rather than half-close, which a client
    // still sending (a slowloris one, or one still writing a huge header) would keep open.
    socket.write(`${head.join('\r\n')}\r\n\r\n${body}`)
    socket.destroy(err)
  }
}

function asClientError (err: Error & { code?: string }): Error {
  if (err.code === 'HPE_HEADER_OVERFLOW') return new HeadersTooLargeError('The request\'s header fields are larger than the gateway accepts')
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return new RequestTimeoutError()
  return new BadRequestError('The request is not valid HTTP/1.1', 400)
}
