import { BadRequestPathError } from '../errors'

/**
 * The upstream path for a request below a route prefix. Anything that could climb out of the
 * upstream's base path once some server decodes it (dot segments, encoded slashes or backslashes,
 * doubled slashes) or parses it (a raw '#') is refused rather than guessed at.
 */
export function targetPath (rawUrl: string, prefix: string, upstreamBasePath: string): string {
  if (NEVER_RAW.test(rawUrl)) throw new BadRequestPathError('The request target contains a character that must be percent-encoded')
  const queryAt = rawUrl.indexOf('?')
  const path = queryAt === -1 ? rawUrl : rawUrl.slice(0, queryAt)
  const query = queryAt === -1 ? '' : rawUrl.slice(queryAt)
  const rest = path.slice(prefix.length)
  // The router matched the decoded path, or the path inside an absolute-form target
  // (http://host/...): only a raw path that spells the prefix has its rest below it.
  if (!path.startsWith(prefix) || (rest !== '' && !rest.startsWith('/'))) throw new BadRequestPathError('The path does not belong to this route')
  if (rest.includes('//')) throw new BadRequestPathError('The path contains an empty segment')
  // Without '.', '%' or '\\' no segment can decode to a dot segment or a slash.
  if (SUSPICIOUS.test(rest)) checkSegments(rest)
  const base = upstreamBasePath.replace(/\/+$/, '')
  return (`${base}${rest}` || '/') + query
}

// RFC 3986 allows none of these raw, and URL libraries (WHATWG URL: browsers, fetch, undici)
// always encode them, in the path and in the query: a '#' ends either for an upstream that parses
// with new URL ('/base/..#x' is '/'), and '"', '<', '>' delimit markup. Node's parser has already
// refused controls, spaces and non-ASCII bytes. '[', ']', '{', '}', '|', '^' and '`' are just as
// invalid but WHATWG URL sends them raw in a query (and axios sends brackets), and no server
// reads them as a delimiter.
const NEVER_RAW = /["#<>]/
const SUSPICIOUS = /[.%\\]/

function checkSegments (rest: string): void {
  for (const segment of rest.split('/').slice(1)) {
    // Decoded again while it still decodes: some upstream or framework may decode twice (%252e).
    let decoded = segment
    checkDecoded(decoded)
    for (let round = 0; round < 3 && decoded.includes('%'); round++) {
      try {
        decoded = decodeURIComponent(decoded)
      } catch {
        // Only the first decoding is the client's; a literal '%' left after it is just data.
        if (round === 0) throw new BadRequestPathError('The path is not valid percent-encoding')
        break
      }
      checkDecoded(decoded)
    }
  }
}

function checkDecoded (segment: string): void {
  // Tomcat, Jetty and Spring drop a ;parameter before resolving dot segments: '..;x' is '..'.
  const bare = segment.split(';', 1)[0]
  if (bare === '.' || bare === '..' || /[/\\]/.test(segment) || segment.includes('\0')) {
    throw new BadRequestPathError('The path may not contain dot segments or encoded slashes')
  }
}
