import t from 'tap'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { PassThrough } from 'node:stream'
import { createSigner } from 'fast-jwt'
import { Client, request } from 'undici'
import { buildGateway } from '../../src/app'
import { resolveConfig } from '../../src/config/load'
import { devGatewayIdentity } from '../../src/dev/dev-identity'
import { DEV_IDS } from '../../src/emulator'
import { verificationKeys } from '../../src/validation/jwk'
import { jwtClaims, jwtHeader } from '../helpers/msal-clients'
import { startTestbed } from '../helpers/testbed'
import { EVIL, FABRIKAM, multiTenantSeed } from '../helpers/seeds'

const b64 = (value: unknown): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')

t.test('malformed and hostile tokens: never a 5xx, always the right challenge, the reason logged, no token echoed', async (t) => {
  const { emulator, kit, recorder } = await startTestbed(t, { seed: multiTenantSeed() })

  const logLines: string[] = []
  const logStream = new PassThrough()
  logStream.on('data', (chunk: Buffer) => logLines.push(...chunk.toString().split('\n').filter(Boolean)))
  const config = resolveConfig({
    server: { host: '127.0.0.1', port: 0 },
    identity: devGatewayIdentity(emulator),
    routes: [{
      prefix: '/api',
      upstream: recorder.url,
      user: { requireScopes: ['access_as_user'], scopes: [`${DEV_IDS.sampleApi.identifierUri}/Items.Read`] },
      app: { requireRoles: ['Gateway.Relay'], scopes: [`${DEV_IDS.sampleApi.identifierUri}/.default`] }
    }]
  }, { source: 'test' })
  const gateway = await buildGateway(config, { logger: { level: 'info', stream: logStream } })
  t.teardown(() => gateway.close())
  const client = new Client(await gateway.listen({ host: '127.0.0.1', port: 0 }))
  t.teardown(() => client.close())

  const signIn = await kit.signIn()
  const alice = signIn.accessToken
  const claims = jwtClaims(alice)
  const now = Math.floor(Date.now() / 1000)
  const home = (payload: Record<string, unknown>, header?: Record<string, unknown>): string => emulator.keys.sign(DEV_IDS.tenantId, payload, header)
  const attacker = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const attackerPem = attacker.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  const attackerSigned = (header: Record<string, unknown>, payload = claims): string =>
    createSigner({ key: attackerPem, algorithm: 'RS256', kid: String(header.kid), header: { alg: 'RS256', ...header }, noTimestamp: true })(payload)
  const kid = String(jwtHeader(alice).kid)
  const jwks = await request(`${emulator.url}/${DEV_IDS.tenantId}/discovery/v2.0/keys`, { dispatcher: kit.agent }).then((r) => r.body.json())
  const publicPem = verificationKeys(jwks).get(kid)?.pem ?? ''
  t.match(publicPem, /BEGIN PUBLIC KEY/)
  const [h, p, s] = alice.split('.') as [string, string, string]
  const evilToken = (await kit.signIn({ tenant: EVIL.tenantId, username: EVIL.user.username, password: EVIL.user.password })).accessToken
  const daemon = jwtClaims((await kit.appToken()).accessToken)

  type Row = [name: string, authorization: string | undefined, status: number, error: string]
  const bearer = (token: string): string => `Bearer ${token}`
  const rows: Row[] = [
    ['no Authorization header', undefined, 401, 'missing_token'],
    ['wrong scheme', 'Basic YWxpY2U6c2VjcmV0', 401, 'missing_token'],
    ['empty token', 'Bearer ', 401, 'invalid_token'],
    ['two tokens', `Bearer ${alice} ${alice}`, 401, 'invalid_token'],
    ['not base64', 'Bearer @@@.###.$$$', 401, 'invalid_token'],
    ['truncated', bearer(alice.slice(0, -12)), 401, 'invalid_token'],
    ['three parts of garbage JSON', bearer(`${b64('{not json')}.${b64('nope')}.${b64('sig')}`), 401, 'invalid_token'],
    ['two parts only', bearer(`${h}.${p}`), 401, 'invalid_token'],
    ['alg none', bearer(`${b64({ alg: 'none', typ: 'JWT' })}.${p}.`), 401, 'invalid_token'],
    ['HS256 signed with the public key', bearer(createSigner({ key: publicPem, algorithm: 'HS256', kid })(claims)), 401, 'invalid_token'],
    ['RS384 instead of RS256', bearer(createSigner({ key: attackerPem, algorithm: 'RS384', kid })(claims)), 401, 'invalid_token'],
    ['RS256 by an unknown key', bearer(attackerSigned({ kid: 'attacker-kid' })), 401, 'invalid_token'],
    ['kid of another tenant\'s key', bearer(emulator.keys.sign(FABRIKAM.tenantId, claims)), 401, 'invalid_token'],
    ['jku pointing elsewhere', bearer(attackerSigned({ kid: 'jku-kid', jku: `${recorder.url}/jwks` })), 401, 'invalid_token'],
    ['x5u pointing elsewhere', bearer(attackerSigned({ kid: 'x5u-kid', x5u: `${recorder.url}/cert.pem` })), 401, 'invalid_token'],
    ['embedded jwk', bearer(attackerSigned({ kid: 'jwk-kid', jwk: attacker.publicKey.export({ format: 'jwk' }) })), 401, 'invalid_token'],
    ['embedded x5c with a real kid', bearer(attackerSigned({ kid, x5c: [randomBytes(64).toString('base64')] })), 401, 'invalid_token'],
    ['tampered payload', bearer(`${h}.${b64({ ...claims, oid: DEV_IDS.bob.objectId })}.${s}`), 401, 'invalid_token'],
    ['expired', bearer(home({ ...claims, iat: now - 7200, nbf: now - 7200, exp: now - 3600 })), 401, 'invalid_token'],
    ['nbf in the future', bearer(home({ ...claims, nbf: now + 3600, exp: now + 7200 })), 401, 'invalid_token'],
    ['no exp', bearer(home({ ...claims, exp: undefined })), 401, 'invalid_token'],
    ['wrong aud', bearer(home({ ...claims, aud: DEV_IDS.sampleApi.clientId })), 401, 'invalid_token'],
    ['wrong iss', bearer(home({ ...claims, iss: `https://evil.example/${DEV_IDS.tenantId}/v2.0` })), 401, 'invalid_token'],
    ['iss and tid disagree', bearer(home({ ...claims, tid: FABRIKAM.tenantId })), 401, 'invalid_token'],
    ['no tid', bearer(home({ ...claims, tid: undefined })), 401, 'invalid_token'],
    ['tenant not allowed', bearer(evilToken), 401, 'invalid_token'],
    ['v1 token with a wrong App ID URI', bearer(home({ ...claims, ver: '1.0', iss: `https://sts.windows.net/${DEV_IDS.tenantId}/`, aud: 'api://not-the-gateway', appid: claims.azp, azp: undefined }, { x5t: kid })), 401, 'invalid_token'],
    ['neither scp nor roles', bearer(home({ ...claims, scp: undefined })), 401, 'invalid_token'],
    ['app-only token without roles', bearer(home({ ...daemon, roles: undefined })), 401, 'invalid_token'],
    ['an ID token instead of an access token', bearer(signIn.idToken), 401, 'invalid_token'],
    ['a 16 KB header', bearer(`${h}.${'A'.repeat(15_800)}.${s}`), 401, 'invalid_token'],
    ['scope in a different case', bearer(home({ ...claims, scp: 'ACCESS_AS_USER' })), 403, 'insufficient_scope'],
    ['a prefix of the required scope', bearer(home({ ...claims, scp: 'access_as' })), 403, 'insufficient_scope'],
    ['a unicode look-alike scope', bearer(home({ ...claims, scp: 'access_as_us\u0435r' })), 403, 'insufficient_scope'],
    ['a workload token without the role', bearer(home({ ...daemon, roles: ['Gateway.Other'] })), 403, 'insufficient_scope']
  ]
  t.ok(rows.length >= 25, `${rows.length} hostile inputs`)

  const challenge = `Bearer realm="", authorization_uri="${emulator.url}/${DEV_IDS.tenantId}/oauth2/v2.0/authorize", client_id="${DEV_IDS.gateway.clientId}"`
  for (const [name, authorization, status, error] of rows) {
    const res = await client.request({ method: 'GET', path: '/api/items', headers: authorization === undefined ? {} : { authorization, 'client-request-id': `row-${rows.findIndex((r) => r[0] === name)}` } })
    const text = await res.body.text()
    t.equal(res.statusCode, status, `${name}: status`)
    const expectedChallenge = error === 'missing_token' ? challenge : `${challenge}, error="${error}"${error === 'insufficient_scope' ? ', scope="' : ''}`
    t.ok(String(res.headers['www-authenticate']).startsWith(expectedChallenge), `${name}: challenge`)
    const body = JSON.parse(text) as Record<string, string>
    t.equal(body.error, error, `${name}: body`)
    t.type(body.error_description, 'string')
    t.notMatch(text, /eyJ/, `${name}: no token in the answer`)
  }
  t.equal(recorder.requests.length, 0, 'nothing reached the upstream, not even the jku/x5u URLs')

  await t.test('valid tokens still pass, unicode in claims included', async (t) => {
    const res = await client.request({ method: 'GET', path: '/api/items', headers: { authorization: bearer(home({ ...claims, name: 'Zoë 𝒜lice 東京' })) } })
    t.equal(res.statusCode, 200)
    await res.body.dump()
  })

  await t.test('a header over Node\'s 16 KB limit is refused by the HTTP layer with 431, not a 5xx', async (t) => {
    const res = await client.request({ method: 'GET', path: '/api/items', headers: { authorization: bearer('A'.repeat(20_000)) } })
    t.equal(res.statusCode, 431)
    await res.body.dump()
  })

  await t.test('each rejection is logged with its reason and correlation id, never with the token', async (t) => {
    await new Promise((resolve) => setImmediate(resolve))
    const rejections = logLines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'request' && (l.status as number) >= 400)
    t.ok(rejections.length >= rows.length, `${rejections.length} rejections logged, one line each`)
    const expiredRow = rows.findIndex((r) => r[0] === 'expired')
    t.match(rejections.find((l) => l.reqId === `row-${expiredRow}`), { code: 'OBO_INVALID_TOKEN', error: 'The token has expired', status: 401, route: '/api', path: '/api/items' })
    t.notMatch(logLines.join('\n'), /eyJ[A-Za-z0-9_-]{10,}\.eyJ/, 'no JWT in any log line')
  })
})
