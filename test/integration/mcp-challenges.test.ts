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

  await t.test('tools/call of a guarded tool without its scope: 403 step-up, and the call never reaches the server', async (t) => {
    const token = (await kit.signIn()).accessToken
    const before = recorder.requests.length
    const tokenRequests = emulator.records.tokenRequests().length
    const callTool = (name: string, headers: Record<string, string> = {}) => request(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
      body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name, arguments: { id: '1' } } })
    })
    const refused = await callTool('delete_item')
    t.equal(refused.statusCode, 403)
    t.equal(refused.headers['www-authenticate'], `${base}, error="insufficient_scope", scope="${GATEWAY_SCOPE} ${ADMIN_SCOPE}", resource_metadata="${metadataUrl}"`)
    t.match(await refused.body.json(), { error: 'insufficient_scope', error_description: /delete_item needs one of the scopes: Tools\.Admin/ })
    const byHeaders = await callTool('delete_item', { 'mcp-method': 'tools/call', 'mcp-name': 'delete_item' })
    t.equal(byHeaders.statusCode, 403)
    await byHeaders.body.dump()
    t.equal(recorder.requests.length, before, 'the MCP server saw nothing')
    t.equal(emulator.records.tokenRequests().length, tokenRequests, 'no OBO token was asked for')

    const allowed = await callTool('get_item')
    t.equal(allowed.statusCode, 200, 'an unguarded tool passes')
    await allowed.body.dump()
    const admin = (await kit.signIn({ scopes: [GATEWAY_SCOPE, ADMIN_SCOPE] })).accessToken
    const stepped = await request(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 8, method: 'tools/call', params: { name: 'delete_item', arguments: { id: '1' } } })
    })
    t.equal(stepped.statusCode, 200, 'with the scope the call goes through')
    await stepped.body.dump()
    t.match(JSON.parse(recorder.requests.at(-1)!.body), { method: 'tools/call', params: { name: 'delete_item' } })
  })

  await t.test('with tool rules, a batch or a body that cannot be inspected is refused', async (t) => {
    const token = (await kit.signIn()).accessToken
    const before = recorder.requests.length
    const batch = await request(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify([{ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'get_item' } }])
    })
    t.equal(batch.statusCode, 400)
    t.match(await batch.body.json(), { error: 'invalid_mcp_request', error_description: /batch/ })
    const large = await request(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'delete_item', arguments: { pad: 'x'.repeat(70 * 1024) } } })
    })
    t.equal(large.statusCode, 400, 'larger than replayBodyLimitBytes (64 KiB)')
    t.match(await large.body.json(), { error: 'invalid_mcp_request', error_description: /too large to inspect/ })
    t.equal(recorder.requests.length, before)
  })
})
