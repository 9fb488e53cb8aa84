import type { DownstreamToken } from '../acquisition/token-acquirer'
import { claimsChallenge, parseWwwAuthenticate } from '../challenges/parse-www-authenticate'
import { DownstreamChallengeUnsupportedError, InsufficientClaimsError, UpstreamRefusedTokenError } from '../errors'
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
 * Acquire, forward, and handle a 401 from the downstream API. With a claims challenge (CAE
 * revocation, step-up) the way Microsoft.Identity.Web does: drop the refused token, and when the
 * request can be sent again, ask Entra once for a token with those claims and retry; when that
 * cannot be done, or Entra wants the user back, the caller gets the challenge only if it declared
 * cp1 and can act on it. Without one, the caller's token was fine (the gateway validated it) and
 * ours was not, so the caller never sees that 401: the token is dropped and, when the request can
 * be sent again, a new one is tried once; a second refusal is the gateway's failure, a 502.
 */
export async function callDownstream (principal: Principal, body: RequestBody, steps: DownstreamCallSteps): Promise<UpstreamResponse> {
  let token = await steps.acquire()
  let response = await steps.send(token.accessToken, bodyForAttempt(body))
  if (response.status !== 401) return response
  await steps.evict(token)
  discard(response)
  let claims = downstreamClaims(response)
  if (!body.replayable) throw claims === undefined ? refusedToken(response, 'the request\'s body streamed through once, so it could not be sent again with a new token') : challengeFor(principal, claims)

  token = claims === undefined ? await steps.acquire() : await acquireWithClaims(principal, steps, claims)
  response = await steps.send(token.accessToken, bodyForAttempt(body))
  if (response.status !== 401) return response
  await steps.evict(token)
  discard(response)
  claims = downstreamClaims(response)
  throw claims === undefined ? refusedToken(response, 'the retry with a token just obtained from Entra was refused too') : challengeFor(principal, claims)
}

async function acquireWithClaims (principal: Principal, steps: DownstreamCallSteps, claims: string): Promise<DownstreamToken> {
  try {
    return await steps.acquire(claims)
  } catch (err) {
    if (err instanceof InsufficientClaimsError) throw challengeFor(principal, err.claims)
    throw err
  }
}

/** Lets a refused answer's body drain so its connection goes back to the pool. */
function discard (response: UpstreamResponse): void {
  if (!Buffer.isBuffer(response.body)) response.body.resume()
}

function downstreamClaims (response: UpstreamResponse): string | undefined {
  return claimsChallenge(parseWwwAuthenticate(response.headers['www-authenticate']))
}

// What of the upstream's challenge the log may show: its error code, if it looks like one. Its
// error_description may quote the token it refused (some APIs do).
const ERROR_CODE = /^[\w.-]{1,64}$/

function refusedToken (response: UpstreamResponse, why: string): UpstreamRefusedTokenError {
  const error = parseWwwAuthenticate(response.headers['www-authenticate']).find((c) => c.scheme.toLowerCase() === 'bearer')?.params.error
  const named = error !== undefined && ERROR_CODE.test(error) ? ` (error="${error}")` : ''
  return new UpstreamRefusedTokenError(`The upstream answered 401 without a claims challenge${named}; ${why}`)
}

function challengeFor (principal: Principal, claims: string): Error {
  if (principal.kind === 'user' && principal.clientCapabilities.includes('cp1')) {
    return new InsufficientClaimsError('The downstream API requires a token with more claims (for example after a session revocation); sign in again with the claims in WWW-Authenticate', claims, undefined, 'downstream')
  }
  return new DownstreamChallengeUnsupportedError('The downstream API requires the user to sign in again (claims challenge). This client did not declare the cp1 capability, so the challenge cannot be passed on: acquire a new token interactively, and declare clientCapabilities: [\'CP1\'] to receive such challenges')
}
