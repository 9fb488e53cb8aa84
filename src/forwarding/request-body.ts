import type { Readable } from 'node:stream'
import { ClientClosedRequestError } from '../errors'

/**
 * A request body as forwarding needs it. Small bodies of known length are read into memory so the
 * request can be sent again after a downstream claims challenge; anything else streams through
 * once and cannot be replayed.
 */
export type RequestBody =
  | { replayable: true, bytes: Buffer | undefined }
  | { replayable: false, stream: Readable }

export async function prepareBody (stream: Readable | undefined, contentLength: string | undefined, limitBytes: number): Promise<RequestBody> {
  if (stream === undefined) return { replayable: true, bytes: undefined }
  const declared = contentLength === undefined ? Number.NaN : Number(contentLength)
  if (!Number.isSafeInteger(declared) || declared > limitBytes) return { replayable: false, stream }
  const chunks: Buffer[] = []
  try {
    for await (const chunk of stream) chunks.push(chunk as Buffer)
  } catch (err) {
    // Node's 'aborted' error (ECONNRESET): the client hung up mid-upload, nothing failed here.
    if ((err as { code?: unknown }).code === 'ECONNRESET') throw new ClientClosedRequestError()
    throw err
  }
  return { replayable: true, bytes: Buffer.concat(chunks) }
}

/** What to hand the upstream client for one attempt. */
export function bodyForAttempt (body: RequestBody): Buffer | Readable | undefined {
  return body.replayable ? body.bytes : body.stream
}
