import { InvalidTokenError, NoTokenError } from '../errors'

// RFC 6750 §2.1 b64token; a JWT is three base64url parts joined by dots, well within this.
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/
const WHITESPACE = /\s/
const MAX_TOKEN_LENGTH = 16 * 1024

/** The bearer token of an Authorization header value, or the reason there is none. */
export function bearerToken (authorization: string | undefined): string {
  const token = bearerCredential(authorization)
  checkBearerSyntax(token)
  return token
}

/**
 * The credential after the Bearer scheme, bounded in length but not yet checked character by
 * character: a token found in the verified-token cache (by its hash) passed that check before.
 */
export function bearerCredential (authorization: string | undefined): string {
  const header = authorization?.trim() ?? ''
  if (header === '') throw new NoTokenError()
  const gap = header.search(WHITESPACE)
  const scheme = gap === -1 ? header : header.slice(0, gap)
  if (scheme.length !== 6 || scheme.toLowerCase() !== 'bearer') {
    throw new NoTokenError('The Authorization header does not use the Bearer scheme')
  }
  const token = gap === -1 ? '' : header.slice(gap + 1).trimStart()
  if (token === '') throw new InvalidTokenError('The bearer token is empty', 'malformed')
  if (token.length > MAX_TOKEN_LENGTH) throw new InvalidTokenError('The bearer token is malformed', 'malformed')
  return token
}

/** RFC 6750 token68 syntax: the one regex over the whole token, run once per distinct token. */
export function checkBearerSyntax (token: string): void {
  if (B64TOKEN.test(token)) return
  if (WHITESPACE.test(token)) throw new InvalidTokenError('The Authorization header must carry exactly one token', 'malformed')
  throw new InvalidTokenError('The bearer token is malformed', 'malformed')
}
