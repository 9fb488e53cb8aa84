import { generateKeyPairSync } from 'node:crypto'
import fc from 'fast-check'
import { createSigner } from 'fast-jwt'
import { errors, type Dispatcher } from 'undici'
import { DEV_IDS } from '../../src/emulator'
import type { UpstreamRecorder } from './upstream-recorder'

/**
 * Hostile requests for the property-based fuzz test (test/fuzz/) and `npm run chaos fuzz`: mutated
 * and forged tokens, odd Authorization headers, piles of headers, and paths built from the pieces
 * path traversal is made of. Each request is judged by an oracle written independently of the
 * gateway's code: never a 5xx, never an invalid credential accepted, and what reaches the upstream
 * carries the gateway's token on a path no server could resolve outside the route.
 */

export const DEFAULT_FUZZ_SEED = 1414

/** The seed of a fuzz run: FUZZ_SEED, or a fixed default so CI repeats the same cases. */
export function fuzzSeed (): number {
  const fromEnv = Number(process.env.FUZZ_SEED)
  return Number.isInteger(fromEnv) && process.env.FUZZ_SEED !== '' ? fromEnv : DEFAULT_FUZZ_SEED
}

export interface TokenMaterial {
  /** A real access token of Alice for the gateway. */
  valid: string
  /** Signs claims with the emulator's current key of the home tenant. */
  sign: (claims: Record<string, unknown>, header?: Record<string, unknown>) => string
}

export interface HostileRequest {
  method: 'GET' | 'POST'
  path: string
  /** Flat name, value, name, value, ...: duplicates and their order are part of the case. */
  headers: string[]
}

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
const b64 = (value: unknown): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')

/**
 * Claim edits each of which makes a token invalid for the gateway's route, even signed by Entra's
 * key (so not `ver` alone, or an `aud` list that names the gateway: both are valid).
 */
function badClaims (claims: Record<string, unknown>): Array<Record<string, unknown>> {
  const now = Math.floor(Date.now() / 1000)
  return [
    { ...claims, iat: now - 7200, nbf: now - 7200, exp: now - 3600 },
    { ...claims, nbf: now + 3600, exp: now + 7200 },
    { ...claims, exp: undefined },
    { ...claims, aud: DEV_IDS.sampleApi.clientId },
    { ...claims, iss: `https://evil.example/${DEV_IDS.tenantId}/v2.0` },
    { ...claims, tid: '00000000-0000-4000-8000-000000000bad' },
    { ...claims, tid: undefined },
    { ...claims, scp: undefined },
    { ...claims, scp: 'ACCESS_AS_USER' },
    { ...claims, scp: 'access_as' },
    { ...claims, exp: now - 120 },
    { ...claims, aud: '' }
  ]
}

/** Tokens that are not the valid one (a mutation may by chance give it back; the oracle knows). */
export function tokenArbitrary (material: TokenMaterial): fc.Arbitrary<string> {
  const { valid } = material
  const claims = JSON.parse(Buffer.from(valid.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>
  const header = JSON.parse(Buffer.from(valid.split('.')[0] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>
  const [h = '', p = '', s = ''] = valid.split('.')
  const attacker = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  const forged = (kid: string, alg: 'RS256' | 'RS384'): string =>
    createSigner({ key: attacker, algorithm: alg, kid, noTimestamp: true })(claims)
  const signedBad = badClaims(claims).map((c) => material.sign(c))
  const charOf = fc.oneof(fc.constantFrom(...B64URL.split('')), fc.constantFrom('.', '=', '+', '/', '~', '%', ' ', '\t', 'é', '\u0000'))
  const at = fc.nat({ max: valid.length - 1 })
  return fc.oneof(
    fc.tuple(at, charOf).map(([i, c]) => valid.slice(0, i) + c + valid.slice(i + 1)),
    fc.tuple(at, fc.nat({ max: 40 })).map(([i, n]) => valid.slice(0, i) + valid.slice(i + n + 1)),
    fc.tuple(at, fc.string({ unit: charOf, minLength: 1, maxLength: 8 })).map(([i, x]) => valid.slice(0, i) + x + valid.slice(i)),
    fc.nat({ max: 15 }).map((low) => `${h}.${p}.${s.slice(0, -1)}${B64URL[(B64URL.indexOf(s.at(-1) ?? 'A') & 0b110000) | low] ?? ''}`),
    fc.constantFrom(`${h}.${p}`, `${h}.${p}.`, `${p}.${h}.${s}`, `${h}.${p}.${s}.${s}`, `${h}..${s}`, `.${p}.${s}`, `${h}.${p}.${s}=`, `${h}=.${p}.${s}`,
      `${b64({ ...header, alg: 'none' })}.${p}.`, `${b64({ ...header, alg: 'HS256' })}.${p}.${s}`, `${h}.${b64({ ...claims, oid: DEV_IDS.bob.objectId })}.${s}`,
      `${h}.${'A'.repeat(15_000)}.${s}`, `${valid} ${valid}`, valid.toUpperCase()),
    fc.constantFrom(...signedBad),
    fc.tuple(fc.constantFrom(String(header.kid), 'attacker', ''), fc.constantFrom('RS256' as const, 'RS384' as const)).map(([kid, alg]) => forged(kid, alg)),
    fc.tuple(fc.json(), fc.json(), fc.string({ maxLength: 40 })).map(([a, b, c]) => `${b64(a)}.${b64(b)}.${b64(c)}`),
    fc.string({ unit: 'binary-ascii', maxLength: 200 }).map(cleanValue)
  )
}

/** What undici can put on the wire as a header value (no CR, LF or NUL, as Node's parser wants). */
function cleanValue (value: string): string {
  // eslint-disable-next-line no-control-regex
  return value.replace(/[\u0000-\u0008\u000a-\u001f\u007f-\uffff]/g, '')
}

const AUTH_NAMES = ['authorization', 'Authorization', 'AUTHORIZATION', 'aUthoriZation']
const SCHEMES = ['Bearer ', 'bearer ', 'BEARER ', 'Bearer  ', 'Bearer\t', ' Bearer ', 'Bearer', 'Basic ', 'Bearer: ', 'Token ', '']

function authorizationArbitrary (material: TokenMaterial): fc.Arbitrary<[string, string]> {
  const token = fc.oneof({ weight: 1, arbitrary: fc.constant(material.valid) }, { weight: 4, arbitrary: tokenArbitrary(material) })
  return fc.tuple(fc.constantFrom(...AUTH_NAMES), fc.constantFrom(...SCHEMES), token, fc.constantFrom('', ' ', '\t', ' x'))
    .map(([name, scheme, t, tail]) => [name, cleanValue(scheme + t + tail)])
}

// Names a client might try to smuggle past the gateway's own headers; hop-by-hop ones undici refuses to send are left out.
const RISKY_NAMES = ['x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'forwarded', 'client-request-id', 'x-ms-client-request-id',
  'proxy-authorization', 'x-original-url', 'x-rewrite-url', 'cookie', 'x-ms-token-aad-access-token', 'x-http-method-override', 'content-type']
const NAME_CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789-_!#$&*+.^`|~'.split('')

function extraHeaderArbitrary (): fc.Arbitrary<[string, string]> {
  const name = fc.oneof(fc.constantFrom(...RISKY_NAMES), fc.string({ unit: fc.constantFrom(...NAME_CHARS), minLength: 1, maxLength: 24 }).map((n) => `x-${n}`))
  return fc.tuple(name, fc.string({ unit: 'binary-ascii', maxLength: 64 }).map(cleanValue))
}

/** Pieces of path segments: dot segments in every spelling, ;parameters, encoded slashes and ordinary names. */
const PATH_ATOMS = ['.', '..', '...', '%2e', '%2E', '%2e%2e', '%252e', '%25252e', '.%2e', ';', '%3b', '%3B', ';x=y', ';jsessionid=1',
  'a', 'v1.0', 'items', '%2f', '%2F', '%5c', '\\', '%00', '%', '%25', '%252f', '~', '%c0%ae', '%u002e', '%20', '+', ':', '@', '..%00']

export function pathArbitrary (): fc.Arbitrary<string> {
  const segment = fc.array(fc.constantFrom(...PATH_ATOMS), { minLength: 0, maxLength: 4 }).map((atoms) => atoms.join(''))
  const query = fc.constantFrom('', '?a=1', '?next=..%2f..%2fadmin', '?%2e%2e')
  return fc.tuple(fc.array(segment, { minLength: 1, maxLength: 5 }), query).map(([segments, q]) => `/api/${segments.join('/')}${q}`)
}

export function hostileRequestArbitrary (material: TokenMaterial): fc.Arbitrary<HostileRequest> {
  const authorizations = fc.oneof(
    { weight: 6, arbitrary: authorizationArbitrary(material).map((a) => [a]) },
    { weight: 2, arbitrary: fc.array(authorizationArbitrary(material), { minLength: 2, maxLength: 3 }) },
    { weight: 1, arbitrary: fc.constant([]) }
  )
  const extras = fc.oneof(
    { weight: 6, arbitrary: fc.array(extraHeaderArbitrary(), { maxLength: 8 }) },
    { weight: 1, arbitrary: fc.array(extraHeaderArbitrary(), { minLength: 90, maxLength: 130 }) }
  )
  const path = fc.oneof({ weight: 1, arbitrary: fc.constant('/api/items') }, { weight: 2, arbitrary: pathArbitrary() })
  return fc.record({ method: fc.constantFrom('GET' as const, 'POST' as const), path, authorizations, extras, authFirst: fc.boolean() })
    .map(({ method, path, authorizations, extras, authFirst }) => {
      const pairs = authFirst ? [...authorizations, ...extras] : [...extras, ...authorizations]
      return { method, path, headers: pairs.flat() }
    })
}

/** Whether the request carries exactly one Authorization header, holding the valid token as a Bearer credential. */
export function carriesValidToken (request: HostileRequest, valid: string): boolean {
  const values: string[] = []
  for (let i = 0; i < request.headers.length; i += 2) {
    if (request.headers[i]?.toLowerCase() === 'authorization') values.push(request.headers[i + 1] ?? '')
  }
  return values.length === 1 && new RegExp(`^\\s*bearer\\s+${valid.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*$`, 'i').test(values[0] ?? '')
}

/**
 * Whether no server could resolve this upstream path outside its base: no empty segment, and no
 * segment that is a dot segment (Tomcat-style ;parameters dropped) or holds a slash, backslash or
 * NUL after being percent-decoded up to three times.
 */
export function safeUpstreamPath (url: string): boolean {
  const path = url.split('?', 1)[0] ?? ''
  if (path.includes('//')) return false
  for (let segment of path.split('/').slice(1)) {
    for (let round = 0; round <= 3; round++) {
      const bare = segment.split(';', 1)[0]
      if (bare === '.' || bare === '..' || /[/\\\0]/.test(segment)) return false
      try {
        const next = decodeURIComponent(segment)
        if (next === segment) break
        segment = next
      } catch {
        break
      }
    }
  }
  return true
}

export interface Verdict {
  status: number
  reachedUpstream: boolean
  /** What the oracle found wrong; empty when the gateway held. */
  violations: string[]
  /** The client refused to send it (undici's own header checks); nothing to judge. */
  unsent?: boolean
}

/**
 * Looks up what the upstream received by the x-fuzz-id each request carries, so requests may be
 * in flight together. Reads the recorder's new entries each time instead of scanning them all.
 */
export function upstreamIndex (recorder: UpstreamRecorder): (id: string) => UpstreamRecorder['requests'][number] | undefined {
  const byId = new Map<string, UpstreamRecorder['requests'][number]>()
  let read = 0
  return (id) => {
    for (; read < recorder.requests.length; read++) {
      const r = recorder.requests[read]!
      byId.set(String(r.headers['x-fuzz-id']), r)
    }
    return byId.get(id)
  }
}

/** Sends one hostile request and judges the answer. */
export async function judge (dispatcher: Dispatcher, request: HostileRequest, id: string, valid: string, upstream: ReturnType<typeof upstreamIndex>): Promise<Verdict> {
  let res: Dispatcher.ResponseData
  try {
    res = await dispatcher.request({
      method: request.method,
      path: request.path,
      headers: [...request.headers, 'x-fuzz-id', id],
      ...(request.method === 'POST' ? { body: '{"fuzz":true}' } : {})
    })
  } catch (err) {
    if (err instanceof errors.InvalidArgumentError) return { status: 0, reachedUpstream: false, violations: [], unsent: true }
    throw err
  }
  const text = await res.body.text()
  const status = res.statusCode
  const seen = upstream(id)
  const violations: string[] = []
  if (status >= 500) violations.push(`answered ${status}: ${text.slice(0, 300)}`)
  const validToken = carriesValidToken(request, valid)
  const fields = request.headers.length / 2 + 1
  if (!validToken && status < 400) violations.push(`no single valid token, yet answered ${status}`)
  if (!validToken && seen !== undefined) violations.push('no single valid token, yet the upstream was called')
  if (fields > 100 && seen !== undefined) violations.push(`${fields} header fields, yet the upstream was called`)
  if (seen !== undefined) {
    if (!safeUpstreamPath(seen.url)) violations.push(`the upstream received the path ${seen.url}`)
    const auth = String(seen.headers.authorization ?? '')
    const aud = auth.startsWith('Bearer ') ? JSON.parse(Buffer.from(auth.slice(7).split('.')[1] ?? '', 'base64url').toString('utf8')).aud : undefined
    if (aud !== DEV_IDS.sampleApi.clientId) violations.push(`the upstream did not see the gateway's token (aud ${String(aud)})`)
    if (seen.headers['x-forwarded-for'] !== '127.0.0.1') violations.push(`the upstream saw x-forwarded-for ${String(seen.headers['x-forwarded-for'])}`)
    for (const name of ['forwarded', 'x-original-url', 'x-rewrite-url']) {
      if (seen.headers[name] !== undefined) violations.push(`the upstream saw the client's ${name}`)
    }
  }
  if (status >= 400) {
    let body: { error?: unknown, correlation_id?: unknown } = {}
    try { body = JSON.parse(text) as typeof body } catch { violations.push(`a ${status} without a JSON body: ${text.slice(0, 200)}`) }
    if (typeof body.error !== 'string') violations.push(`a ${status} without an error code`)
    // The correlation id echoes the client's own client-request-id, whatever it holds.
    const own = JSON.stringify({ ...body, correlation_id: undefined })
    if (/eyJ|"stack"|\n\s+at /.test(own)) violations.push(`a token or a stack in the answer: ${text.slice(0, 200)}`)
  }
  return { status, reachedUpstream: seen !== undefined, violations }
}
