import t from 'tap'
import { createHash } from 'node:crypto'
import { request as httpRequest } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { fetch as undiciFetch, request } from 'undici'
import { auth, fetchToken } from '@modelcontextprotocol/sdk/client/auth.js'
import { DEV_IDS } from '../../src/emulator'
import { jwtClaims } from '../helpers/msal-clients'
import { startTestbed } from '../helpers/testbed'
import { GATEWAY_SCOPE, startMcpGateway } from '../helpers/mcp-gateway'
import { InMemoryOAuthProvider } from '../helpers/mcp-oauth-provider'

t.test('the authorization-server facade makes Entra usable by MCP clients', async (t) => {
  const { emulator, kit, recorder } = await startTestbed(t)
  const { origin, url } = await startMcpGateway(t, emulator, recorder.url)
  const entraAuthorize = `${emulator.url}/${DEV_IDS.tenantId}/oauth2/v2.0/authorize`
  const entraToken = `${emulator.url}/${DEV_IDS.tenantId}/oauth2/v2.0/token`
  const facade = `${origin}/oauth2/mcp`

  await t.test('RFC 8414 metadata (and the OpenID form) at the path-inserted well-known URLs', async (t) => {
    const oauth = await (await request(`${origin}/.well-known/oauth-authorization-server/mcp`)).body.json() as Record<string, unknown>
    t.match(oauth, {
      issuer: url,
      authorization_endpoint: `${facade}/authorize`,
      token_endpoint: `${facade}/token`,
      registration_endpoint: `${facade}/register`,
      response_types_supported: ['code'],
      code_challenge_methods_supported: ['S256'],
      token_endpoint_auth_methods_supported: ['none']
    })
    const openid = await (await request(`${origin}/.well-known/openid-configuration/mcp`)).body.json() as Record<string, unknown>
    t.match(openid, { issuer: url, authorization_endpoint: `${facade}/authorize`, jwks_uri: `${emulator.url}/${DEV_IDS.tenantId}/discovery/v2.0/keys` })
  })

  await t.test('the SDK from a bare URL: discovery, registration, then the authorize redirect to Entra without resource', async (t) => {
    const provider = new InMemoryOAuthProvider('http://127.0.0.1:53682/callback')
    t.equal(await auth(provider, { serverUrl: url }), 'REDIRECT')
    t.match(provider.client, { client_id: DEV_IDS.mcpClient.clientId, redirect_uris: ['http://127.0.0.1:53682/callback'], token_endpoint_auth_method: 'none' })
    t.notOk((provider.client as { client_secret?: string }).client_secret, 'no secret is handed out')

    const sent = provider.authorizationUrl!
    t.equal(`${sent.origin}${sent.pathname}`, `${facade}/authorize`)
    t.equal(sent.searchParams.get('resource'), url, 'the SDK sends RFC 8707 resource (the MCP route)')
    const res = await request(sent, { method: 'GET' })
    t.equal(res.statusCode, 302)
    await res.body.dump()
    const location = new URL(String(res.headers.location))
    t.equal(`${location.origin}${location.pathname}`, entraAuthorize, 'straight to the emulator\'s /authorize')
    t.equal(location.searchParams.get('resource'), null, 'resource removed')
    t.equal(location.searchParams.get('scope'), GATEWAY_SCOPE, 'the gateway\'s scope')
    t.equal(location.searchParams.get('code_challenge_method'), 'S256')
    t.equal(location.searchParams.get('code_challenge'), createHash('sha256').update(provider.codeVerifier()).digest('base64url'), 'PKCE untouched')
    for (const name of ['client_id', 'redirect_uri', 'state', 'response_type']) {
      t.equal(location.searchParams.get(name), sent.searchParams.get(name), `${name} unchanged`)
    }
  })

  await t.test('the token endpoint forwards to Entra without resource, scopes mapped, and returns Entra\'s answer', async (t) => {
    const form = (extra: Record<string, string>) => new URLSearchParams({ grant_type: 'password', client_id: DEV_IDS.mcpClient.clientId, username: DEV_IDS.alice.username, resource: url, ...extra }).toString()
    const ok = await request(`${facade}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form({ password: DEV_IDS.alice.password, scope: `${DEV_IDS.gateway.scope} offline_access` }) })
    t.equal(ok.statusCode, 200)
    t.equal(ok.headers['cache-control'], 'no-store')
    const tokens = await ok.body.json() as { access_token: string }
    t.match(jwtClaims(tokens.access_token), { aud: DEV_IDS.gateway.clientId, scp: DEV_IDS.gateway.scope, azp: DEV_IDS.mcpClient.clientId, oid: DEV_IDS.alice.objectId })

    const refused = await request(`${facade}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form({ password: 'wrong', scope: GATEWAY_SCOPE }) })
    t.equal(refused.statusCode, 400)
    t.match(await refused.body.json(), { error: 'invalid_grant', error_codes: [50126] }, 'Entra\'s refusal, as Entra wrote it')
  })

  await t.test('a client that sends resource straight to Entra gets AADSTS9010010 (why the facade exists)', async (t) => {
    const provider = {
      ...new InMemoryOAuthProvider('http://127.0.0.1/callback'),
      redirectUrl: undefined,
      clientMetadata: { redirect_uris: [] as string[], token_endpoint_auth_method: 'none' },
      clientInformation: () => ({ client_id: DEV_IDS.mcpClient.clientId }),
      tokens: () => undefined,
      saveTokens: () => {},
      redirectToAuthorization: () => {},
      saveCodeVerifier: () => {},
      codeVerifier: () => '',
      prepareTokenRequest: () => new URLSearchParams({ grant_type: 'password', username: DEV_IDS.alice.username, password: DEV_IDS.alice.password, scope: GATEWAY_SCOPE })
    }
    // The SDK checks for the global Response; undici's own fetch trusts the emulator's CA.
    const fetchFn = async (input: string | URL, init?: RequestInit): Promise<Response> => {
      const res = await undiciFetch(input, { ...(init as object), dispatcher: kit.agent })
      return new Response(await res.arrayBuffer(), { status: res.status, headers: Object.fromEntries(res.headers) })
    }
    const metadata = { issuer: emulator.url, authorization_endpoint: entraAuthorize, token_endpoint: entraToken, response_types_supported: ['code'] }
    await t.rejects(fetchToken(provider, emulator.url, { metadata, resource: new URL(url), fetchFn }), { errorCode: 'invalid_target', message: /AADSTS9010010/ })
    const withIdUri = await fetchToken(provider, emulator.url, { metadata, resource: new URL(DEV_IDS.gateway.identifierUri), fetchFn })
    t.match(jwtClaims(withIdUri.access_token), { aud: DEV_IDS.gateway.clientId }, 'the application\'s identifier URI is accepted')
  })

  await t.test('the emulator\'s /authorize refuses the same resource with AADSTS9010010, back at the redirect URI', async (t) => {
    const params = new URLSearchParams({ client_id: DEV_IDS.mcpClient.clientId, response_type: 'code', redirect_uri: 'http://127.0.0.1:5000/callback', scope: GATEWAY_SCOPE, code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', state: 's', resource: url })
    const res = await request(`${entraAuthorize}?${params.toString()}`, { dispatcher: kit.agent })
    await res.body.dump()
    t.equal(res.statusCode, 302)
    const back = new URL(String(res.headers.location))
    t.equal(`${back.origin}${back.pathname}`, 'http://127.0.0.1:5000/callback')
    t.equal(back.searchParams.get('error'), 'invalid_target')
    t.match(back.searchParams.get('error_description'), /AADSTS9010010/)
    params.set('resource', DEV_IDS.gateway.identifierUri)
    const ok = await request(`${entraAuthorize}?${params.toString()}`, { dispatcher: kit.agent })
    await ok.body.dump()
    t.notMatch(String(ok.headers.location ?? ''), /invalid_target/, 'the identifier URI is accepted')
  })

  await t.test('registration: the configured client, redirect URIs checked against the allow-list', async (t) => {
    const register = (body: unknown) => request(`${facade}/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    const ok = await register({ redirect_uris: ['http://127.0.0.1:61000/callback', 'http://localhost:4000/callback'], client_name: 'Some agent', token_endpoint_auth_method: 'client_secret_basic' })
    t.equal(ok.statusCode, 201)
    t.match(await ok.body.json(), { client_id: DEV_IDS.mcpClient.clientId, redirect_uris: ['http://127.0.0.1:61000/callback', 'http://localhost:4000/callback'], token_endpoint_auth_method: 'none', client_name: 'Some agent' })
    for (const [body, why] of [
      [{ redirect_uris: ['https://evil.example/callback'] }, 'off the allow-list'],
      [{ redirect_uris: ['http://127.0.0.1:61000/callback', 'http://127.0.0.1:61000/other'] }, 'one of them off the list'],
      [{ redirect_uris: [] }, 'none'],
      [{ client_name: 'x' }, 'missing']
    ] as const) {
      const res = await register(body)
      t.equal(res.statusCode, 400, why)
      t.match(await res.body.json(), { error: 'invalid_redirect_uri' }, why)
    }
    const notObject = await register(['x'])
    t.equal(notObject.statusCode, 400)
    t.match(await notObject.body.json(), { error: 'invalid_client_metadata' })
  })

  await t.test('a registration sent with Expect: 100-continue is invited at once: these endpoints take requests without a token', async (t) => {
    const body = JSON.stringify({ redirect_uris: ['http://127.0.0.1:61000/callback'] })
    const req = httpRequest(`${facade}/register`, { method: 'POST', headers: { expect: '100-continue', 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } })
    req.on('continue', () => { req.end(body) })
    const answer = new Promise<number>((resolve, reject) => {
      req.on('response', (res) => { res.resume(); resolve(res.statusCode ?? 0) })
      req.on('error', reject)
    })
    t.equal(await Promise.race([answer, sleep(5000).then(() => 'no 100 Continue within 5 s')]), 201)
    req.destroy()
  })

  await t.test('authorize and token refusals', async (t) => {
    const authorize = async (params: Record<string, string>) => {
      const res = await request(`${facade}/authorize?${new URLSearchParams(params).toString()}`)
      return { status: res.statusCode, location: res.headers.location, body: await res.body.json() as { error: string } }
    }
    const good = { response_type: 'code', client_id: DEV_IDS.mcpClient.clientId, redirect_uri: 'http://127.0.0.1:5000/callback', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', state: 's' }
    const cases: Array<[Record<string, string>, string, string]> = [
      [{ ...good, redirect_uri: 'https://evil.example/cb' }, 'invalid_redirect_uri', 'a redirect URI off the list'],
      [{ ...good, client_id: DEV_IDS.devClient.clientId }, 'invalid_client', 'another client'],
      [{ ...good, code_challenge_method: 'plain' }, 'invalid_request', 'PKCE without S256'],
      [{ ...good, scope: `${DEV_IDS.sampleApi.identifierUri}/Items.Read` }, 'invalid_scope', 'another resource\'s scope']
    ]
    for (const [params, error, why] of cases) {
      const res = await authorize(params)
      t.equal(res.status, 400, why)
      t.equal(res.location, undefined, `${why}: no redirect`)
      t.equal(res.body.error, error, why)
    }
    const mapped = await request(`${facade}/authorize?${new URLSearchParams({ ...good, scope: `openid ${url}/${DEV_IDS.gateway.toolsAdminScope} ${DEV_IDS.gateway.scope}` }).toString()}`)
    t.equal(mapped.statusCode, 302)
    await mapped.body.dump()
    t.equal(new URL(String(mapped.headers.location)).searchParams.get('scope'), `openid ${DEV_IDS.gateway.identifierUri}/${DEV_IDS.gateway.toolsAdminScope} ${GATEWAY_SCOPE}`, 'scopes named below the MCP URL or bare are the gateway\'s')

    const token = await request(`${facade}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'authorization_code', client_id: DEV_IDS.devClient.clientId, code: 'c' }).toString() })
    t.equal(token.statusCode, 400)
    t.match(await token.body.json(), { error: 'invalid_client' })
  })
})
