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
    let decoded: string
    try {
      decoded = decodeURIComponent(segment)
    } catch {
      throw new BadRequestPathError('The path is not valid percent-encoding')
    }
    if (decoded === '.' || decoded === '..' || /[/\\]/.test(decoded) || decoded.includes('\0')) {
      throw new BadRequestPathError('The path may not contain dot segments or encoded slashes')
    }
  }
}
