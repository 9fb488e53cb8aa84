import { BadRequestPathError } from '../errors'

/**
 * The upstream path for a request below a route prefix. Anything that could climb out of the
 * upstream's base path once some server decodes it (dot segments, encoded slashes or backslashes,
 * doubled slashes) is refused rather than guessed at.
 */
export function targetPath (rawUrl: string, prefix: string, upstreamBasePath: string): string {
  const queryAt = rawUrl.indexOf('?')
  const path = queryAt === -1 ? rawUrl : rawUrl.slice(0, queryAt)
  const query = queryAt === -1 ? '' : rawUrl.slice(queryAt)
  const rest = path.slice(prefix.length)
  if (rest !== '' && !rest.startsWith('/')) throw new BadRequestPathError('The path does not belong to this route')
  if (rest.includes('//')) throw new BadRequestPathError('The path contains an empty segment')
  // Without '.', '%' or '\\' no segment can decode to a dot segment or a slash.
  if (SUSPICIOUS.test(rest)) checkSegments(rest)
  const base = upstreamBasePath.replace(/\/+$/, '')
  return (`${base}${rest}` || '/') + query
}

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
