import { hash } from 'node:crypto'

/** The incoming access token and its SHA-256, computed once per request when it is validated. Never log it. */
export interface Assertion {
  token: string
  sha256: string
}

export function assertionFrom (token: string): Assertion {
  // One-shot hash(): no Hash object per request.
  return { token, sha256: hash('sha256', token, 'base64url') }
}
