import { InvalidTokenError, NoTokenError } from '../errors'

// RFC 6750 §2.1 b64token; a JWT is three base64url parts joined by dots, well within this.
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/
const MAX_TOKEN_LENGTH = 16 * 1024

/** The bearer token of an Authorization header value, or the reason there is none. */
export function bearerToken (authorization: string | undefined): string {
  if (authorization === undefined || authorization.trim() === '') throw new NoTokenError()
  const match = /^(\S+)(?:\s+(.*))?$/.exec(authorization.trim())
  if (match === null || match[1]?.toLowerCase() !== 'bearer') {
    throw new NoTokenError('The Authorization header does not use the Bearer scheme')
  }
  const token = match[2] ?? ''
  if (token === '') throw new InvalidTokenError('The bearer token is empty', 'malformed')
  if (/\s/.test(token)) throw new InvalidTokenError('The Authorization header must carry exactly one token', 'malformed')
  if (token.length > MAX_TOKEN_LENGTH || !B64TOKEN.test(token)) throw new InvalidTokenError('The bearer token is malformed', 'malformed')
  return token
}
