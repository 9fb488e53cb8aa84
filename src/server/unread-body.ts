import type { IncomingMessage } from 'node:http'

/** Up to this much of a declared body is read and skipped after a refusal, keeping the connection. */
const SKIPPED_BODY_MAX_BYTES = 64 * 1024

/**
 * Whether a refusal closes its connection: the client may still be sending a body nobody will
 * read. Node would read and discard all of it to keep the connection (a whole 1 GiB upload sent
 * without a token), so instead the connection closes after the answer. A small body of declared
 * length costs little to skip, and its client's next request keeps the connection.
 */
export function closesAfterRefusal (req: IncomingMessage, status: number): boolean {
  if (status < 400 || req.complete) return false
  const length = req.headers['content-length']
  return length === undefined || !(Number(length) <= SKIPPED_BODY_MAX_BYTES)
}
