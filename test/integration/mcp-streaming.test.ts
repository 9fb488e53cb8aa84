import t from 'tap'
import { createServer, type ServerResponse } from 'node:http'
import { request } from 'undici'
import { startTestbed } from '../helpers/testbed'
import { startMcpGateway } from '../helpers/mcp-gateway'

t.test('an MCP server\'s event stream reaches the client as it is written, not when it ends', async (t) => {
  const { emulator, kit } = await startTestbed(t)
  let open: ServerResponse | undefined
  const received: Array<Record<string, string | string[] | undefined>> = []
  const upstream = createServer((req, res) => {
    received.push(req.headers)
    req.resume()
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'mcp-session-id': 'session-from-server' })
    res.write('id: 1\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":1}}\n\n')
    open = res
  })
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { upstream.closeAllConnections(); upstream.close() })
  const { url } = await startMcpGateway(t, emulator, `http://127.0.0.1:${(upstream.address() as { port: number }).port}/mcp`)
  const token = (await kit.signIn()).accessToken

  const res = await request(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': 'session-from-client' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'get_item', arguments: {} } })
  })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-type'], 'text/event-stream')
  t.equal(res.headers['mcp-session-id'], 'session-from-server', 'the session id comes back')
  t.equal(received[0]?.['mcp-session-id'], 'session-from-client', 'and goes up')
  t.notOk(String(received[0]?.authorization).includes(token), 'the MCP server never sees the client\'s token')

  const reader = res.body[Symbol.asyncIterator]()
  const first = await reader.next()
  t.match(String(first.value), /notifications\/progress/, 'the first event arrived while the server still holds the stream open')
  open!.end('id: 2\ndata: {"jsonrpc":"2.0","id":1,"result":{"content":[]}}\n\n')
  let rest = ''
  for (let next = await reader.next(); next.done !== true; next = await reader.next()) rest += String(next.value)
  t.match(rest, /"result"/)
})
