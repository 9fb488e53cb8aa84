import t from 'tap'
import { Readable } from 'node:stream'
import type { DownstreamToken } from '../../src/acquisition/token-acquirer'
import { callDownstream, type DownstreamCallSteps } from '../../src/forwarding/downstream-call'
import type { UpstreamResponse } from '../../src/forwarding/forwarder'
import { prepareBody } from '../../src/forwarding/request-body'
import { InsufficientClaimsError, type UpstreamRefusedTokenError } from '../../src/errors'
import { principalFromClaims } from '../../src/validation/principal'

const CAE = '{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}'
const CAE_HEADER = `Bearer realm="", authorization_uri=https://login.example/common/oauth2/authorize, error="insufficient_claims", claims="${Buffer.from(CAE).toString('base64')}"`
const capable = principalFromClaims({ scp: 'a', azp: 'spa', oid: 'o', xms_cc: ['CP1'] }, 't')
const incapable = principalFromClaims({ scp: 'a', azp: 'spa', oid: 'o' }, 't')

function response (status: number, headers: Record<string, string> = {}): UpstreamResponse {
  return { status, headers, body: Readable.from([Buffer.from('{}')]) }
}

/** A scripted downstream: answers in order, and remembers what the gateway did. */
function script (answers: UpstreamResponse[], acquireError?: Error) {
  const log: string[] = []
  let n = 0
  const steps: DownstreamCallSteps = {
    acquire: async (claims) => {
      log.push(`acquire${claims ? ` ${claims}` : ''}`)
      if (claims !== undefined && acquireError !== undefined) throw acquireError
      return { accessToken: `token-${++n}`, cacheKey: `key-${n}` } as unknown as DownstreamToken
    },
    evict: async (token) => { log.push(`evict ${token.accessToken}`) },
    send: async (accessToken, body) => {
      log.push(`send ${accessToken} ${Buffer.isBuffer(body) ? body.toString() : body === undefined ? '-' : 'stream'}`)
      return answers.shift()!
    }
  }
  return { steps, log }
}

t.test('no challenge: one token, one send', async (t) => {
  const { steps, log } = script([response(200)])
  t.equal((await callDownstream(capable, await prepareBody(undefined, undefined, 10), steps)).status, 200)
  t.same(log, ['acquire', 'send token-1 -'])
})

t.test('a CAE challenge on a replayable request: evict, acquire with the claims, retry once', async (t) => {
  const { steps, log } = script([response(401, { 'www-authenticate': CAE_HEADER }), response(200)])
  const body = await prepareBody(Readable.from([Buffer.from('{"a":1}')]), '7', 1024)
  t.equal((await callDownstream(incapable, body, steps)).status, 200)
  t.same(log, ['acquire', 'send token-1 {"a":1}', 'evict token-1', `acquire ${CAE}`, 'send token-2 {"a":1}'])
})

t.test('a body too large to hold cannot be replayed: the challenge goes to a capable client', async (t) => {
  const { steps, log } = script([response(401, { 'www-authenticate': CAE_HEADER })])
  const body = await prepareBody(Readable.from([Buffer.alloc(2048)]), '2048', 1024)
  t.equal(body.replayable, false)
  await t.rejects(callDownstream(capable, body, steps), { code: 'OBO_INSUFFICIENT_CLAIMS', claims: CAE })
  t.same(log, ['acquire', 'send token-1 stream', 'evict token-1'])
})

t.test('a challenge again after the retry, or Entra wanting the user back, ends the attempt', async (t) => {
  const twice = script([response(401, { 'www-authenticate': CAE_HEADER }), response(401, { 'www-authenticate': CAE_HEADER })])
  await t.rejects(callDownstream(capable, await prepareBody(undefined, undefined, 10), twice.steps), { code: 'OBO_INSUFFICIENT_CLAIMS' })
  t.same(twice.log.filter((l) => l.startsWith('evict')), ['evict token-1', 'evict token-2'])

  const entraClaims = '{"access_token":{"capolids":{"essential":true,"values":["p"]}}}'
  const interaction = script([response(401, { 'www-authenticate': CAE_HEADER })], new InsufficientClaimsError('mfa', entraClaims))
  await t.rejects(callDownstream(capable, await prepareBody(undefined, undefined, 10), interaction.steps), { code: 'OBO_INSUFFICIENT_CLAIMS', claims: entraClaims }, 'Entra\'s claims are what the client must satisfy')
  const notCapable = script([response(401, { 'www-authenticate': CAE_HEADER })], new InsufficientClaimsError('mfa', entraClaims))
  await t.rejects(callDownstream(incapable, await prepareBody(undefined, undefined, 10), notCapable.steps), { code: 'OBO_DOWNSTREAM_CHALLENGE_UNSUPPORTED' })
})

t.test('a 401 without a claims challenge: the token is dropped and the request sent once more with a new one', async (t) => {
  const refused = response(401, { 'www-authenticate': 'Bearer error="invalid_token", error_description="token token-1 is not valid"' })
  const { steps, log } = script([refused, response(200)])
  const body = await prepareBody(Readable.from([Buffer.from('{"a":1}')]), '7', 1024)
  t.equal((await callDownstream(capable, body, steps)).status, 200)
  t.same(log, ['acquire', 'send token-1 {"a":1}', 'evict token-1', 'acquire', 'send token-2 {"a":1}'])
})

t.test('refused again, or not sendable again: the gateway\'s 502, never the upstream\'s 401', async (t) => {
  const invalid = { 'www-authenticate': 'Bearer error="invalid_token", error_description="token eyJ.secret is not valid"' }
  const twice = script([response(401, invalid), response(401, invalid)])
  const err = await callDownstream(incapable, await prepareBody(undefined, undefined, 10), twice.steps).catch((e: unknown) => e)
  t.match(err, { code: 'OBO_UPSTREAM_REFUSED_TOKEN', detail: /error="invalid_token"/ })
  t.notMatch((err as UpstreamRefusedTokenError).detail, /eyJ/, 'the log line does not quote the upstream\'s description')
  t.same(twice.log, ['acquire', 'send token-1 -', 'evict token-1', 'acquire', 'send token-2 -', 'evict token-2'])

  const streamed = script([response(401, invalid)])
  const large = await prepareBody(Readable.from([Buffer.alloc(2048)]), '2048', 1024)
  await t.rejects(callDownstream(capable, large, streamed.steps), { code: 'OBO_UPSTREAM_REFUSED_TOKEN' })
  t.same(streamed.log, ['acquire', 'send token-1 stream', 'evict token-1'], 'dropped, not retried')

  const afterClaims = script([response(401, { 'www-authenticate': CAE_HEADER }), response(401)])
  await t.rejects(callDownstream(capable, await prepareBody(undefined, undefined, 10), afterClaims.steps), { code: 'OBO_UPSTREAM_REFUSED_TOKEN' }, 'the token obtained for the claims refused without a challenge')
  t.same(afterClaims.log, ['acquire', 'send token-1 -', 'evict token-1', `acquire ${CAE}`, 'send token-2 -', 'evict token-2'])

  const thenClaims = script([response(401), response(401, { 'www-authenticate': CAE_HEADER })])
  await t.rejects(callDownstream(capable, await prepareBody(undefined, undefined, 10), thenClaims.steps), { code: 'OBO_INSUFFICIENT_CLAIMS', claims: CAE }, 'a challenge on the retry goes to the caller, as any challenge after a retry')
  t.equal(thenClaims.log.filter((l) => l.startsWith('send')).length, 2, 'still one retry only')
})
