import type { EventEmitter } from 'node:events'
import { Readable } from 'node:stream'
import { errors as undiciErrors, type Dispatcher } from 'undici'
import { clientResponseHeaders } from './headers'

/**
 * The upstream's answer as the client will get it. A small answer of known length arrives whole
 * (`Buffer`), so the gateway sends it in one write with no stream in between; anything else is a
 * stream that flows with the client's backpressure.
 */
export interface UpstreamResponse {
  status: number
  headers: Record<string, string | string[]>
  body: Buffer | Readable
}

/** Largest answer (by its Content-Length) read whole before it is passed on. */
export const BUFFERED_ANSWER_MAX_BYTES = 64 * 1024

export interface AnswerCallbacks {
  /** The answer's headers (and, when it is read whole, its body) arrived. */
  resolve: (response: UpstreamResponse) => void
  /** No answer: the request failed before the upstream's headers (or whole small body) arrived. */
  reject: (err: Error) => void
  /** When the status line arrived, or the request failed without one: for the upstream latency metric. */
  onHeaders?: ((outcome: number | 'error') => void) | undefined
  /**
   * The error a streamed body fails with when the upstream breaks off: a gateway error, so that
   * when nothing was sent to the client yet it gets a 502 or 504, not a 500.
   */
  broken: (err: Error) => Error
}

/**
 * An undici dispatch handler for one forwarded request. Compared with `pool.request()`, it reads
 * small answers straight into a buffer (no stream, no pipe, no listeners per request) and, for the
 * rest, hands fastify a plain Readable that pauses the upstream socket when the client is slow.
 */
export class UpstreamAnswer implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined
  /** resolve or reject has been called. */
  private settled = false
  /** The upstream finished sending, or failed: nothing left to abort. */
  private finished = false
  private aborted: Error | undefined
  private chunks: Buffer[] | undefined
  private status = 0
  private headers: Record<string, string | string[]> = {}
  private stream: Readable | undefined
  private readonly onAbort = (): void => { this.abort(new undiciErrors.RequestAbortedError()) }

  constructor (
    private readonly callbacks: AnswerCallbacks,
    private readonly signal: EventEmitter,
    private readonly head: boolean
  ) {
    signal.once('abort', this.onAbort)
  }

  onRequestStart (controller: Dispatcher.DispatchController): void {
    this.controller = controller
    if (this.aborted !== undefined) controller.abort(this.aborted)
  }

  onResponseStart (controller: Dispatcher.DispatchController, status: number, headers: Record<string, string | string[] | undefined>): void {
    if (status < 200) return // 1xx: Node's server answers Expect itself; the final answer follows
    this.callbacks.onHeaders?.(status)
    this.status = status
    this.headers = clientResponseHeaders(headers)
    if (this.readWhole(status, headers)) {
      this.chunks = []
      return
    }
    this.stream = new Readable({
      read: () => { controller.resume() },
      destroy: (err, done) => {
        // The client went away or fastify gave up on the stream: stop reading from the upstream.
        if (!this.finished) controller.abort(err ?? new undiciErrors.RequestAbortedError())
        done(err)
      }
    })
    this.settle()
    this.callbacks.resolve({ status, headers: this.headers, body: this.stream })
  }

  onResponseData (controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.chunks !== undefined) this.chunks.push(chunk)
    else if (this.stream !== undefined && !this.stream.push(chunk)) controller.pause()
  }

  onResponseEnd (): void {
    this.finished = true
    if (this.chunks !== undefined) {
      this.settle()
      const body = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks)
      this.callbacks.resolve({ status: this.status, headers: this.headers, body })
    } else {
      this.stream?.push(null)
    }
  }

  onResponseError (_controller: Dispatcher.DispatchController | undefined, err: Error): void {
    this.finished = true
    if (!this.settled) {
      if (this.status === 0) this.callbacks.onHeaders?.('error')
      this.settle()
      this.callbacks.reject(err)
    } else {
      this.stream?.destroy(this.callbacks.broken(err))
    }
  }

  /** Bodies of known, small length that fastify will not relabel (it types a bare buffer octet-stream). */
  private readWhole (status: number, headers: Record<string, string | string[] | undefined>): boolean {
    if (this.head || status === 204 || status === 304) return true
    const length = headers['content-length']
    if (typeof length !== 'string') return false
    const bytes = Number(length)
    return bytes === 0 || (bytes <= BUFFERED_ANSWER_MAX_BYTES && headers['content-type'] !== undefined)
  }

  private abort (reason: Error): void {
    this.aborted = reason
    this.controller?.abort(reason)
  }

  private settle (): void {
    this.settled = true
    this.signal.off('abort', this.onAbort)
  }
}
