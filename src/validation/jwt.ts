import { verify, type KeyObject } from 'node:crypto'
import { InvalidTokenError } from '../errors'

/** A compact JWS split and its two JSON parts parsed; nothing about it is trusted yet. */
export interface DecodedJwt {
  header: Readonly<Record<string, unknown>>
  payload: Record<string, unknown>
  /** `header.payload` as sent: what the signature covers. */
  signingInput: string
  signature: Buffer
}

/**
 * Splits and parses a token that already passed `checkBearerSyntax` (three canonical base64url
 * parts), so the parts decode exactly as written.
 */
export function decodeJwt (token: string): DecodedJwt {
  const first = token.indexOf('.')
  const last = token.lastIndexOf('.')
  return {
    header: headerOf(token.slice(0, first)),
    payload: jsonPart(token.slice(first + 1, last), 'payload'),
    signingInput: token.slice(0, last),
    signature: Buffer.from(token.slice(last + 1), 'base64url')
  }
}

// Entra gives every token signed with one key the same header: parsed once, not per token. Frozen
// because it is shared; bounded in count and size, so odd headers only cost their own parse.
const HEADERS = new Map<string, Readonly<Record<string, unknown>>>()
const HEADERS_KEPT = 32
const HEADER_KEPT_LENGTH = 512

function headerOf (part: string): Readonly<Record<string, unknown>> {
  let header = HEADERS.get(part)
  if (header === undefined) {
    header = Object.freeze(jsonPart(part, 'header'))
    if (part.length <= HEADER_KEPT_LENGTH) {
      if (HEADERS.size >= HEADERS_KEPT) HEADERS.clear()
      HEADERS.set(part, header)
    }
  }
  return header
}

function jsonPart (part: string, name: string): Record<string, unknown> {
  let value: unknown
  try {
    value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'))
  } catch {
    value = undefined
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidTokenError(`The token is invalid: the token ${name} is not a base64url-encoded JSON object`, 'malformed')
  }
  return value as Record<string, unknown>
}

export interface ClaimRules {
  /** Accepted `aud` values; the token's `aud` (a string or a list) must name one. */
  audiences: ReadonlySet<string>
  clockSkewSeconds: number
}

const REQUIRED_CLAIMS = ['exp', 'aud', 'iss'] as const

/**
 * RS256 signature, then the registered claims: `exp`, `aud` and `iss` required, `exp` and `nbf`
 * within the clock skew, `aud` one of ours. The issuer was settled when the key was chosen; the
 * algorithm is checked again because the key is whatever the caller passes. Any `crit` header is
 * refused: this verifier understands no JWS extension.
 */
export function verifyJwt (jwt: DecodedJwt, key: KeyObject, rules: ClaimRules, nowMs: number): void {
  if (jwt.header.alg !== 'RS256') throw new InvalidTokenError('The token must be signed with RS256', 'algorithm')
  if (jwt.signature.length === 0 || !verify('sha256', Buffer.from(jwt.signingInput, 'latin1'), key, jwt.signature)) {
    throw new InvalidTokenError('The token is invalid: the token signature is invalid', 'signature')
  }
  if (jwt.header.crit !== undefined) throw new InvalidTokenError('The token is invalid: the crit header names an unsupported extension', 'malformed')
  const { payload } = jwt
  for (const claim of REQUIRED_CLAIMS) {
    if (!(claim in payload)) throw new InvalidTokenError(`The token is invalid: the ${claim} claim is required`, 'claims')
  }
  const skewMs = rules.clockSkewSeconds * 1000
  if (payload.nbf !== undefined) {
    if (typeof payload.nbf !== 'number') throw new InvalidTokenError('The token is invalid: the nbf claim must be a number', 'claims')
    if (nowMs < payload.nbf * 1000 - skewMs) throw new InvalidTokenError('The token is not valid yet', 'not_yet_valid')
  }
  if (typeof payload.exp !== 'number') throw new InvalidTokenError('The token is invalid: the exp claim must be a number', 'claims')
  if (nowMs > payload.exp * 1000 + skewMs) throw new InvalidTokenError('The token has expired', 'expired')
  const aud = payload.aud
  const audiences = Array.isArray(aud) ? aud : [aud]
  if (!audiences.every((a) => typeof a === 'string')) throw new InvalidTokenError('The token is invalid: the aud claim must be a string or an array of strings', 'claims')
  if (!audiences.some((a) => rules.audiences.has(a as string))) throw new InvalidTokenError('The token is invalid: the aud claim value is not allowed', 'claims')
}
