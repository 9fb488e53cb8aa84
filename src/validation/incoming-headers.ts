import { AmbiguousAuthorizationError, BadHostError, HeadersTooLargeError } from '../errors'

/**
 * At most this many header fields per request. Node's own server bounds their bytes
 * (maxHeaderSize, 16 KiB) but not their number, and upstreams do stop at some number (a Node
 * upstream keeps its first 2,000 lines, others fewer): a client's headers must never push the
 * gateway's out of the upstream's view. Envoy's default is the same 100.
 */
export const MAX_HEADER_FIELDS = 100

/** Node's parser refuses a larger header block; clientErrorHandler answers that with a JSON body. */
export const MAX_HEADER_BYTES = 16 * 1024

/**
 * RFC 9112's Host: a host name, an IPv4 address or a bracketed IPv6 address, then an optional port;
 * empty is allowed. A reg-name may also hold sub-delims and percent-encoding, which no DNS name
 * does and the upstreams reading X-Forwarded-Host would have to escape.
 */
const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~-]*)(?::[0-9]*)?$/

/**
 * One pass over the raw header lines (name, value, name, value, ...), before anything reads the
 * parsed headers: Node keeps the first of two Authorization or Host headers and drops the second,
 * so a duplicate is only visible here.
 */
export function checkIncomingHeaders (rawHeaders: readonly string[]): void {
  const count = rawHeaders.length / 2
  if (count > MAX_HEADER_FIELDS) {
    throw new HeadersTooLargeError(`The request has ${count} header fields; at most ${MAX_HEADER_FIELDS} are accepted`)
  }
  let authorizations = 0
  let hosts = 0
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] ?? ''
    if (name.length === 13 && name.toLowerCase() === 'authorization' && ++authorizations > 1) throw new AmbiguousAuthorizationError()
    if (name.length === 4 && name.toLowerCase() === 'host') {
      if (++hosts > 1) throw new BadHostError('The request carries more than one Host header; send exactly one')
      if (!HOST.test(rawHeaders[i + 1] ?? '')) throw new BadHostError('The Host header is not a host name or address with an optional port')
    }
  }
}
