import t from 'tap'
import { generateKeyPairSync, sign } from 'node:crypto'
import { checkBearerSyntax } from '../../src/validation/bearer'
import { decodeJwt, verifyJwt } from '../../src/validation/jwt'

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
const other = generateKeyPairSync('rsa', { modulusLength: 2048 })
const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')
const NOW = 1_800_000_000
const INVALID = 'OBO_INVALID_TOKEN'
const RULES = { audiences: new Set(['api://gateway', 'gateway-id']), clockSkewSeconds: 300 }
const CLAIMS = { aud: 'gateway-id', iss: 'https://issuer/t/v2.0', exp: NOW + 3600, nbf: NOW - 60 }

function token (payload: Record<string, unknown>, header: Record<string, unknown> = { alg: 'RS256', kid: 'k' }, key = privateKey): string {
  const input = `${b64(header)}.${b64(payload)}`
  return `${input}.${sign('sha256', Buffer.from(input), key).toString('base64url')}`
}

function check (jwt: string, nowSeconds = NOW): void {
  checkBearerSyntax(jwt)
  verifyJwt(decodeJwt(jwt), publicKey, RULES, nowSeconds * 1000)
}

t.test('a valid token passes; its claims are what was signed', async (t) => {
  const jwt = token({ ...CLAIMS, name: 'Zoë' })
  t.doesNotThrow(() => check(jwt))
  t.same(decodeJwt(jwt).payload, { ...CLAIMS, name: 'Zoë' })
  t.doesNotThrow(() => check(token({ ...CLAIMS, aud: ['other', 'api://gateway'] })), 'aud as a list naming one of ours')
})

t.test('lifetime: exp and nbf honour the clock skew and no more', async (t) => {
  t.doesNotThrow(() => check(token(CLAIMS), NOW + 3600 + 300), 'expired within the skew')
  t.throws(() => check(token(CLAIMS), NOW + 3600 + 301), { code: INVALID, reason: 'expired', message: 'The token has expired' })
  t.doesNotThrow(() => check(token({ ...CLAIMS, nbf: NOW + 300 })), 'not yet valid within the skew')
  t.throws(() => check(token({ ...CLAIMS, nbf: NOW + 301 })), { code: INVALID, reason: 'not_yet_valid' })
  t.throws(() => check(token({ ...CLAIMS, nbf: String(NOW) })), { code: INVALID, reason: 'claims' }, 'nbf must be a number')
  t.throws(() => check(token({ ...CLAIMS, exp: String(NOW + 3600) })), { code: INVALID, reason: 'claims' }, 'exp must be a number')
})

t.test('required claims and audience', async (t) => {
  for (const claim of ['exp', 'aud', 'iss']) {
    const { [claim]: _dropped, ...rest } = CLAIMS as Record<string, unknown>
    t.throws(() => check(token(rest)), { code: INVALID, reason: 'claims', message: new RegExp(`the ${claim} claim is required`) }, `no ${claim}`)
  }
  t.throws(() => check(token({ ...CLAIMS, aud: 'someone-else' })), { code: INVALID, reason: 'claims', message: /aud claim value is not allowed/ })
  t.throws(() => check(token({ ...CLAIMS, aud: ['someone-else'] })), { code: INVALID, reason: 'claims' })
  t.throws(() => check(token({ ...CLAIMS, aud: [42, 'gateway-id'] })), { code: INVALID, reason: 'claims', message: /string or an array of strings/ })
})

t.test('signature, algorithm and extensions', async (t) => {
  t.throws(() => check(token(CLAIMS, { alg: 'RS256' }, other.privateKey)), { code: INVALID, reason: 'signature' }, 'signed by another key')
  const [h, , s] = token(CLAIMS).split('.') as [string, string, string]
  t.throws(() => check(`${h}.${b64({ ...CLAIMS, aud: 'api://gateway', iss: 'x' })}.${s}`), { code: INVALID, reason: 'signature' }, 'payload changed after signing')
  t.throws(() => check(`${h}.${b64(CLAIMS)}.`), { code: INVALID, reason: 'signature' }, 'no signature at all')
  t.throws(() => check(token(CLAIMS, { alg: 'RS384' })), { code: INVALID, reason: 'algorithm' })
  t.throws(() => check(token(CLAIMS, { alg: 'RS256', crit: ['exp'] })), { code: INVALID, reason: 'malformed', message: /crit/ }, 'a crit header names an extension we do not implement')
})

t.test('parts that are not JSON objects are malformed, never a 500', async (t) => {
  const sig = token(CLAIMS).split('.')[2]!
  t.throws(() => decodeJwt(`${b64('just a string')}.${b64(CLAIMS)}.${sig}`), { code: INVALID, reason: 'malformed', message: /header is not a base64url-encoded JSON object/ })
  t.throws(() => decodeJwt(`${b64({ alg: 'RS256' })}.${Buffer.from('{not json').toString('base64url')}.${sig}`), { code: INVALID, reason: 'malformed', message: /payload/ })
  t.throws(() => decodeJwt(`${b64({ alg: 'RS256' })}.${b64([1, 2])}.${sig}`), { code: INVALID, reason: 'malformed' }, 'an array is not a claims set')
  t.throws(() => decodeJwt(`${b64({ alg: 'RS256' })}.${b64(null)}.${sig}`), { code: INVALID, reason: 'malformed' })
})
