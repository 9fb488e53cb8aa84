import t from 'tap'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { startDevStack } from '../../src/dev/stack'
import { DEV_IDS } from '../../src/emulator'
import { MsalKit } from '../helpers/msal-clients'
import { ADMIN_SCOPE, GATEWAY_SCOPE } from '../helpers/mcp-gateway'

t.test('the official MCP SDK client reaches the dev stack\'s sample MCP server through the gateway', async (t) => {
  const stack = await startDevStack({ gatewayPort: 0, emulatorPort: 0, sampleApiPort: 0, mcpServerPort: 0, spaPort: 0, dataDir: mkdtempSync(join(tmpdir(), 'obo-mcp-')) })
  t.teardown(() => stack.close())
  const kit = new MsalKit(stack.emulator)
  t.teardown(() => kit.close())
  const url = new URL(`${stack.gatewayUrl}/mcp`)
  const aliceToken = (await kit.signIn()).accessToken

  const connect = async (token: string, sessionId?: string): Promise<{ client: Client, transport: StreamableHTTPClientTransport }> => {
    const transport = new StreamableHTTPClientTransport(url, {
      requestInit: { headers: { Authorization: `Bearer ${token}` } },
      ...(sessionId === undefined ? {} : { sessionId })
    })
    const client = new Client({ name: 'obo-gateway-test', version: '1.0.0' })
    await client.connect(transport)
    t.teardown(() => client.close())
    return { client, transport }
  }

  const { client, transport } = await connect(aliceToken)
  const sessionId = transport.sessionId

  await t.test('initialize: the server\'s identity and a session id came back through the gateway', async (t) => {
    t.match(client.getServerVersion(), { name: 'obo-gateway-sample-mcp-server' })
    t.match(sessionId, /^[0-9a-f-]{36}$/)
  })

  await t.test('tools/list', async (t) => {
    const { tools } = await client.listTools()
    t.same(tools.map((tool) => tool.name).sort(), ['delete_item', 'whoami'])
  })

  await t.test('tools/call whoami: the MCP server got an OBO token for itself, for Alice, not the client\'s', async (t) => {
    const result = await client.callTool({ name: 'whoami', arguments: {} })
    t.same(result.structuredContent, {
      aud: DEV_IDS.mcpServer.clientId,
      scp: DEV_IDS.mcpServer.scope,
      oid: DEV_IDS.alice.objectId,
      azp: DEV_IDS.gateway.clientId,
      tid: DEV_IDS.tenantId
    })
  })

  await t.test('a streamed result: progress events, then the answer, over one event stream', async (t) => {
    const progress: number[] = []
    const result = await client.callTool({ name: 'whoami', arguments: { steps: 3 } }, undefined, { onprogress: (p) => { progress.push(p.progress) } })
    t.same(progress, [1, 2, 3])
    t.match(result.structuredContent, { oid: DEV_IDS.alice.objectId })
  })

  await t.test('tools/call delete_item: refused with the step-up, then allowed with a token that has the scope', async (t) => {
    const refused = await client.callTool({ name: 'delete_item', arguments: { id: '42' } }).then(() => undefined, (err: unknown) => err)
    t.type(refused, StreamableHTTPError)
    t.equal((refused as StreamableHTTPError).code, 403)
    t.match((refused as Error).message, /insufficient_scope.*delete_item needs one of the scopes: Tools\.Admin/)

    const raw = await request(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${aliceToken}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sessionId!, 'mcp-protocol-version': transport.protocolVersion! },
      body: JSON.stringify({ jsonrpc: '2.0', id: 99, method: 'tools/call', params: { name: 'delete_item', arguments: { id: '42' } } })
    })
    t.equal(raw.statusCode, 403)
    t.match(raw.headers['www-authenticate'], `error="insufficient_scope", scope="${GATEWAY_SCOPE} ${ADMIN_SCOPE}", resource_metadata="${stack.gatewayUrl}/.well-known/oauth-protected-resource/mcp"`)
    await raw.body.dump()

    // Session resumption: the same session, a new connection, a token with the step-up scope.
    const adminToken = (await kit.signIn({ scopes: [GATEWAY_SCOPE, ADMIN_SCOPE] })).accessToken
    const resumed = await connect(adminToken, sessionId)
    t.equal(resumed.transport.sessionId, sessionId, 'no new initialize: the session goes on')
    const result = await resumed.client.callTool({ name: 'delete_item', arguments: { id: '42' } })
    t.same(result.content, [{ type: 'text', text: `deleted 42 for ${DEV_IDS.alice.objectId}` }])
  })

  await t.test('stream resumption: a GET event stream with Last-Event-ID replays what followed', async (t) => {
    const headers = { authorization: `Bearer ${aliceToken}`, 'mcp-session-id': sessionId!, 'mcp-protocol-version': transport.protocolVersion! }
    const post = await request(url, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 'resume-1', method: 'tools/call', params: { name: 'whoami', arguments: { steps: 2 }, _meta: { progressToken: 'p1' } } })
    })
    t.equal(post.statusCode, 200)
    t.match(post.headers['content-type'], /^text\/event-stream/, 'a tool call with progress is answered as an event stream')
    const events = (await post.body.text()).split('\n\n').filter((e) => e.trim() !== '')
    const firstId = /^id: (\S+)$/m.exec(events[0] ?? '')?.[1]
    t.ok(firstId, 'the server primed the stream with an event id')
    t.equal(events.filter((e) => e.includes('notifications/progress')).length, 2)

    const controller = new AbortController()
    const get = await request(url, { method: 'GET', headers: { ...headers, accept: 'text/event-stream', 'last-event-id': firstId! }, signal: controller.signal })
    t.equal(get.statusCode, 200)
    t.match(get.headers['content-type'], /^text\/event-stream/)
    let replayed = ''
    for await (const chunk of get.body) {
      replayed += String(chunk)
      if (replayed.includes('"id":"resume-1"')) break
    }
    controller.abort()
    t.match(replayed, /notifications\/progress[\s\S]*"id":"resume-1"/, 'the progress events and the answer, replayed through the gateway')
  })

  await t.test('DELETE ends the session at the server', async (t) => {
    await transport.terminateSession()
    const res = await request(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${aliceToken}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sessionId!, 'mcp-protocol-version': transport.protocolVersion! },
      body: JSON.stringify({ jsonrpc: '2.0', id: 100, method: 'tools/list' })
    })
    t.equal(res.statusCode, 404, 'the server no longer knows the session')
    await res.body.dump()
  })
})
