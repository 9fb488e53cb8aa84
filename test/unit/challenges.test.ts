import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { claimsChallenge, parseWwwAuthenticate, type Challenge } from '../../src/challenges/parse-www-authenticate'
import { formatBearerChallenge } from '../../src/challenges/www-authenticate'

const SAMPLES = join(__dirname, '../fixtures/entra/www-authenticate-samples.txt')

t.test('every real-world sample parses to the parameters it carries', async (t) => {
  const lines = readFileSync(SAMPLES, 'utf8').split('\n').filter((l) => l && !l.startsWith('#'))
  const parsed = new Map(lines.map((l) => {
    const at = l.indexOf(': ')
    return [l.slice(0, at), parseWwwAuthenticate(l.slice(at + 2))]
  }))
  const get = (label: string): Challenge[] => parsed.get(label) ?? []
  t.same(get('graph-cae'), [{
    scheme: 'Bearer',
    params: {
      realm: '',
      authorization_uri: 'https://login.microsoftonline.com/common/oauth2/authorize',
      client_id: '00000003-0000-0000-c000-000000000000',
      error: 'insufficient_claims',
      claims: 'eyJhY2Nlc3NfdG9rZW4iOnsibmJmIjp7ImVzc2VudGlhbCI6dHJ1ZSwgInZhbHVlIjoiMTY1NzgzNDQxNyJ9fX0=',
      errordescription: 'Continuous access evaluation resulted in claims challenge with result: InteractionRequired and code: TokenIssuedBeforeRevocationTimestamp'
    }
  }])
  t.equal(claimsChallenge(get('graph-cae')), '{"access_token":{"nbf":{"essential":true,"value":"1657834417"}}}')
  t.equal(claimsChallenge(get('docs-cae')), '{"access_token":{"nbf":{"essential":true,"value":"1604106651"}}}')
  t.equal(claimsChallenge(get('authcontext')), '{"access_token":{"acrs":{"essential":true,"value":"c1"}}}')
  t.equal(get('authcontext')[0]?.params.cc_type, 'authcontext')
  t.match(get('miw-consent')[0]?.params, { proposedaction: 'consent', scopes: 'https://graph.microsoft.com/User.Read', claims: '' })
  t.match(get('miw-consent')[0]?.params.consenturi, /^https:\/\/login\.microsoftonline\.com\/common\/oauth2\/v2\.0\/authorize\?client_id=/)
  t.equal(claimsChallenge(get('miw-consent')), undefined)
  t.same(get('graph-unauthenticated')[0]?.params.error, undefined)
  t.same(get('keyvault'), [{ scheme: 'Bearer', params: { authorization: 'https://login.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47', resource: 'https://vault.azure.net' } }])
  t.equal(lines.length, 6)
})

t.test('several challenges, repeated headers, raw JSON claims, escapes and garbage', async (t) => {
  t.same(parseWwwAuthenticate(['Basic realm="x", Bearer error="insufficient_claims", claims="{\\"access_token\\":{}}"', 'Negotiate']), [
    { scheme: 'Basic', params: { realm: 'x' } },
    { scheme: 'Bearer', params: { error: 'insufficient_claims', claims: '{"access_token":{}}' } },
    { scheme: 'Negotiate', params: {} }
  ])
  t.equal(claimsChallenge(parseWwwAuthenticate('Bearer error="insufficient_claims", claims="{\\"access_token\\":{\\"nbf\\":{\\"value\\":\\"1\\"}}}"')), '{"access_token":{"nbf":{"value":"1"}}}')
  t.same(parseWwwAuthenticate('Basic dXNlcjpwYXNz=='), [{ scheme: 'Basic', params: {} }])
  for (const junk of ['', '=', '"', 'Bearer error="unterminated', ',,,', 'Bearer ="x"']) {
    t.doesNotThrow(() => parseWwwAuthenticate(junk), JSON.stringify(junk))
  }
  t.equal(claimsChallenge(parseWwwAuthenticate('Bearer error="insufficient_claims", claims="bm90IGpzb24="')), undefined, 'base64 of non-JSON is no claims request')
  t.equal(claimsChallenge(parseWwwAuthenticate('Bearer error="invalid_token", claims="e30="')), undefined, 'only insufficient_claims carries one')
  t.equal(claimsChallenge(parseWwwAuthenticate(undefined)), undefined)
})

t.test('what the gateway writes, it can read back', async (t) => {
  const written = formatBearerChallenge([['realm', ''], ['error', 'insufficient_claims'], ['claims', 'eyJ9'], ['note', 'a "quoted", \\ value']])
  t.same(parseWwwAuthenticate(written)[0]?.params, { realm: '', error: 'insufficient_claims', claims: 'eyJ9', note: 'a "quoted", \\ value' })
})
