import type { DownstreamToken } from '../acquisition/token-acquirer'
import { claimsChallenge, parseWwwAuthenticate } from '../challenges/parse-www-authenticate'
import { DownstreamChallengeUnsupportedError, InsufficientClaimsError } from '../errors'
import type { Principal } from '../validation/principal'
import type { UpstreamResponse } from './forwarder'
import { bodyForAttempt, type RequestBody } from './request-body'

export interface DownstreamCallSteps {
  /** A downstream token for the caller; with `claims`, a fresh one that satisfies them. */
  acquire: (claims?: string) => Promise<DownstreamToken>
  /** Forget a token the downstream API no longer accepts. */
  evict: (token: DownstreamToken) => Promise<void>
  send: (accessToken: string, body: Buffer | import('node:stream').Readable | undefined) => Promise<UpstreamResponse>
}

/**
 * Acquire, forward, and handle the downstream API's claims challenge (CAE revocation, step-up) the
 * way Microsoft.Identity.Web does: drop the refused token, and when the request can be sent again,
 * ask Entra once for a token with those claims and retry. When that cannot be done, or Entra wants
 * the user back, the caller gets the challenge only if it declared cp1 and can act on it.
 */
export async function callDownstream (principal: Principal, body: RequestBody, steps: DownstreamCallSteps): Promise<UpstreamResponse> {
  let token = await steps.acquire()
  let response = await steps.send(token.accessToken, bodyForAttempt(body))
  let claims = downstreamClaims(response)
  if (claims === undefined) return response
  await steps.evict(token)

  if (body.replayable) {
    discard(response)
    try {
      token = await steps.acquire(claims)
    } catch (err) {
      if (err instanceof InsufficientClaimsError) throw challengeFor(principal, err.claims)
      throw err
    }
    response = await steps.send(token.accessToken, bodyForAttempt(body))
    const again = downstreamClaims(response)
    if (again === undefined) return response
    await steps.evict(token)
    claims = again
  }
  discard(response)
  throw challengeFor(principal, claims)
}

/** Lets a refused answer's body drain so its connection goes back to the pool. */
function discard (response: UpstreamResponse): void {
  if (!Buffer.isBuffer(response.body)) response.body.resume()
}

function downstreamClaims (response: UpstreamResponse): string | undefined {
  if (response.status !== 401) return undefined
  return claimsChallenge(parseWwwAuthenticate(response.headers['www-authenticate']))
}

function challengeFor (principal: Principal, claims: string): Error {
  if (principal.kind === 'user' && principal.clientCapabilities.includes('cp1')) {
    return new InsufficientClaimsError('The downstream API requires a token with more claims (for example after a session revocation); sign in again with the claims in WWW-Authenticate', claims, undefined, 'downstream')
  }
  return new DownstreamChallengeUnsupportedError('The downstream API requires the user to sign in again (claims challenge). This client did not declare the cp1 capability, so the challenge cannot be passed on: acquire a new token interactively, and declare clientCapabilities: [\'CP1\'] to receive such challenges')
}
