import { BadRequestPathError } from '../errors'

/**
 * The upstream path for a request below a route prefix. Anything that could climb out of the
 * upstream's base path once some server decodes it (dot segments, encoded slashes or backslashes,
 * doubled slashes) or parses it (a raw '#') is refused rather than guessed at, and so is a path
 * that an upstream could read as one below `innerRoutes`, the routes nested in this one (/api/admin
 * in /api, from {@link innerRoutesOf}).
 */
export function targetPath (rawUrl: string, prefix: string, upstreamBasePath: string, innerRoutes: InnerRoutes = []): string {
  if (NEVER_RAW.test(rawUrl)) throw new BadRequestPathError('The request target contains a character that must be percent-encoded')
  const queryAt = rawUrl.indexOf('?')
  const path = queryAt === -1 ? rawUrl : rawUrl.slice(0, queryAt)
  const query = queryAt === -1 ? '' : rawUrl.slice(queryAt)
  const rest = path.slice(prefix.length)
  // The router matched the decoded path, or the path inside an absolute-form target
  // (http://host/...): only a raw path that spells the prefix has its rest below it.
  if (!path.startsWith(prefix) || (rest !== '' && !rest.startsWith('/'))) throw new BadRequestPathError('The path does not belong to this route')
  if (rest.includes('//')) throw new BadRequestPathError('The path contains an empty segment')
  // Without '.', '%' or '\\' no segment can decode (or normalise) to a dot segment or a slash.
  if (SUSPICIOUS.test(rest)) checkSegments(rest)
  if (innerRoutes.length > 0) checkInnerRoutes(rest, innerRoutes)
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
    for (const form of decodings(segment)) {
      const name = bare(form)
      if (name === '.' || name === '..' || /[/\\\0]/.test(form)) {
        throw new BadRequestPathError('The path may not contain dot segments or encoded slashes')
      }
    }
  }
}

/** The routes nested in one, each as its segment names below that route's prefix, lowercased. */
export type InnerRoutes = ReadonlyArray<readonly string[]>

/** Worked out once per route, not per request: `/api/admin` in `/api` is `[['admin']]`. */
export function innerRoutesOf (prefix: string, innerPrefixes: readonly string[]): InnerRoutes {
  return innerPrefixes.map((inner) => inner.slice(prefix.length + 1).toLowerCase().split('/'))
}

/**
 * The router matched this route and not a nested one because the path spells the nested prefix
 * with a ;parameter, another case or an encoding (/api/admin;x/y, /api/Admin/y, /api/%2561dmin/y),
 * which Tomcat, Jetty and Spring (parameters), IIS (case) or an upstream that decodes again read as
 * that prefix: served here, the request would skip the nested route's own requirements.
 */
function checkInnerRoutes (rest: string, innerRoutes: InnerRoutes): void {
  const segments = rest.split('/').slice(1)
  // Each segment's readings once, however many nested routes look at it.
  const readings: Array<string[] | undefined> = []
  const readingsOf = (i: number): string[] => (readings[i] ??= decodings(segments[i] ?? '').map((form) => bare(form).toLowerCase()))
  for (const names of innerRoutes) {
    if (names.length <= segments.length && names.every((name, i) => readingsOf(i).includes(name))) {
      throw new BadRequestPathError('The path could be read as one of another route, nested in this one; spell that route\'s prefix as configured')
    }
  }
}

/**
 * A segment as the servers along the way may read it: as sent, then decoded again while it still
 * decodes, since some upstream or framework may decode twice (%252e), at most three times. A
 * decoding that is not ASCII is also read in NFKC form, as an upstream that normalises Unicode
 * reads it (Windows' best-fit mapping to a code page does much the same): a full-width dot
 * (%ef%bc%8e) is '.', U+2025 is '..'.
 */
function decodings (segment: string): string[] {
  const forms = [segment]
  let decoded = segment
  for (let round = 0; round < 3 && decoded.includes('%'); round++) {
    try {
      decoded = decodeURIComponent(decoded)
    } catch {
      // Only the first decoding is the client's; a literal '%' left after it is just data.
      if (round === 0) throw new BadRequestPathError('The path is not valid percent-encoding')
      break
    }
    forms.push(decoded)
    if (/[\u0080-\uffff]/.test(decoded)) forms.push(decoded.normalize('NFKC'))
  }
  // Still an encoded '%', '.', '/', '\\', ';' or NUL where decoding stopped (%2525252e after three
  // rounds): one more decoding upstream could make that a dot segment or a slash, so it is refused.
  if (/%(?:25|2e|2f|5c|3b|00)/i.test(decoded)) throw new BadRequestPathError('The path is percent-encoded more times than the gateway decodes')
  return forms
}

/** Tomcat, Jetty and Spring drop a ;parameter before resolving dot segments or matching: '..;x' is '..'. */
function bare (segment: string): string {
  return segment.split(';', 1)[0] ?? ''
}
