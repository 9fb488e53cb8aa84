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

/**
 * RFC 6750 token68 syntax and a JWS compact serialization in canonical base64url, run once per
 * distinct token. Canonical because a decoder ignores the unused low bits of a part's last
 * character: without this one token has up to 16 spellings that all verify, each its own entry in
 * every cache keyed by the token, and each worth an OBO call.
 */
export function checkBearerSyntax (token: string): void {
  // Every token a client means to send: one scan, no split.
  if (JWS_COMPACT.test(token)) {
    const first = token.indexOf('.')
    const last = token.lastIndexOf('.')
    if (!endsCanonically(token, 0, first) || !endsCanonically(token, first + 1, last) || !endsCanonically(token, last + 1, token.length)) {
      throw new InvalidTokenError('The bearer token is not a JWT in canonical base64url', 'malformed')
    }
    return
  }
  if (!B64TOKEN.test(token)) {
    if (WHITESPACE.test(token)) throw new InvalidTokenError('The Authorization header must carry exactly one token', 'malformed')
    throw new InvalidTokenError('The bearer token is malformed', 'malformed')
  }
  const parts = token.split('.')
  if (parts.length !== 3 || !parts.every(isCanonicalBase64url)) {
    throw new InvalidTokenError('The bearer token is not a JWT in canonical base64url', 'malformed')
  }
}

const BASE64URL = /^[A-Za-z0-9_-]*$/
const JWS_COMPACT = /^[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$/
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

function isCanonicalBase64url (part: string): boolean {
  return BASE64URL.test(part) && endsCanonically(part, 0, part.length)
}

/** Whether the base64url characters `text[start, end)` leave no unused bits set. */
function endsCanonically (text: string, start: number, end: number): boolean {
  // 2 or 3 characters left over carry 4 or 2 unused bits, which must be zero; 1 left over is no encoding.
  const rest = (end - start) % 4
  if (rest === 0) return true
  if (rest === 1) return false
  const last = ALPHABET.indexOf(text.charAt(end - 1))
  return (last & (rest === 2 ? 0b1111 : 0b11)) === 0
}
