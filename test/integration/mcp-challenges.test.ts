import t from 'tap'
import { request } from 'undici'
import { DEV_IDS } from '../../src/emulator'
import { startTestbed } from '../helpers/testbed'
import { ADMIN_SCOPE, GATEWAY_SCOPE, startMcpGateway } from '../helpers/mcp-gateway'

t.test('an MCP route publishes RFC 9728 metadata and names it in every challenge', async (t) => {
  const { emulator, kit, recorder } = await startTestbed(t)
  const { origin, url } = await startMcpGateway(t, emulator, recorder.url)
  const base = `Bearer realm="", authorization_uri="${emulator.url}/${DEV_IDS.tenantId}/oauth2/v2.0/authorize", client_id="${DEV_IDS.gateway.clientId}"`
  const metadataUrl = `${origin}/.well-known/oauth-protected-resource/mcp`

  await t.test('the protected resource metadata', async (t) => {
    const res = await request(metadataUrl)
    t.equal(res.statusCode, 200)
    t.match(res.headers['content-type'], /^application\/json/)
    t.same(await res.body.json(), {
      resource: url,
      authorization_servers: [url],
      scopes_supported: [GATEWAY_SCOPE],
      bearer_methods_supported: ['header']
    })
    const other = await request(`${origin}/.well-known/oauth-protected-resource/other`)
    t.equal(other.statusCode, 404, 'only MCP routes have metadata')
    await other.body.dump()
  })

  await t.test('no token: 401 with resource_metadata and scope', async (t) => {
    const res = await request(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"jsonrpc":"2.0","id":1,"method":"initialize"}' })
    t.equal(res.statusCode, 401)
    t.equal(res.headers['www-authenticate'], `${base}, scope="${GATEWAY_SCOPE}", resource_metadata="${metadataUrl}"`)
    await res.body.dump()
  })

  await t.test('a bad token: 401 invalid_token with resource_metadata and scope', async (t) => {
    const res = await request(`${url}/anything`, { headers: { authorization: 'Bearer not.a.jwt' } })
    t.equal(res.statusCode, 401)
    t.equal(res.headers['www-authenticate'], `${base}, error="invalid_token", scope="${GATEWAY_SCOPE}", resource_metadata="${metadataUrl}"`)
    await res.body.dump()
  })

  await t.test('a token without the route scope: 403 naming the full scope URI', async (t) => {
    const token = (await kit.signIn({ scopes: [ADMIN_SCOPE] })).accessToken
    const res = await request(url, { method: 'GET', headers: { authorization: `Bearer ${token}` } })
    t.equal(res.statusCode, 403)
    t.equal(res.headers['www-authenticate'], `${base}, error="insufficient_scope", scope="${GATEWAY_SCOPE}", resource_metadata="${metadataUrl}"`)
    t.equal(recorder.requests.length, 0, 'nothing reached the MCP server')
    await res.body.dump()
  })
})
