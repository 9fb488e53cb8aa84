import t from 'tap'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js'
import { startDevStack } from '../../src/dev/stack'
import { DEV_IDS } from '../../src/emulator'
import { createHttpsAgent } from '../../src/net/https-agent'
import { InMemoryOAuthProvider } from '../helpers/mcp-oauth-provider'
import { SignInDriver } from '../helpers/sign-in-driver'

const REDIRECT = 'http://127.0.0.1:53682/callback'

t.test('an MCP client from a bare URL: discovery, registration, sign-in pages, token, tools', async (t) => {
  const stack = await startDevStack({ gatewayPort: 0, emulatorPort: 0, sampleApiPort: 0, mcpServerPort: 0, dataDir: mkdtempSync(join(tmpdir(), 'obo-mcp-loop-')) })
  t.teardown(() => stack.close())
  const agent = createHttpsAgent({ ca: [stack.emulator.caPem] })
  t.teardown(() => agent.close())
  const url = new URL(`${stack.gatewayUrl}/mcp`)

  const probe = await request(`${stack.emulator.url}/${DEV_IDS.tenantId}/oauth2/v2.0/authorize`, { dispatcher: agent })
  await probe.body.dump()
  if (probe.statusCode === 404) {
    t.skip('this emulator has no /authorize (interactive sign-in) yet')
    return
  }

  // The browser: the facade's 302, then the emulator's pages, driven by Entra's element names.
  const driver = new SignInDriver(agent, stack.emulator.url)
  const codes: string[] = []
  const provider = new InMemoryOAuthProvider(REDIRECT, async (authorizationUrl) => {
    const facade = await request(authorizationUrl)
    await facade.body.dump()
    t.equal(facade.statusCode, 302, 'the facade sends the browser to Entra')
    const back = await driver.signIn(String(facade.headers.location), { username: DEV_IDS.alice.username, password: DEV_IDS.alice.password })
    const landed = new URL(String(back.location))
    t.equal(`${landed.origin}${landed.pathname}`, REDIRECT, 'Entra redirects straight back to the client')
    codes.push(landed.searchParams.get('code') ?? '')
  })

  const connect = async (): Promise<Client> => {
    for (let attempt = 0; attempt < 3; attempt++) {
      const transport = new StreamableHTTPClientTransport(url, { authProvider: provider })
      const client = new Client({ name: 'obo-gateway-loop-test', version: '1.0.0' })
      try {
        await client.connect(transport)
        t.teardown(() => client.close())
        return client
      } catch (err) {
        if (!(err instanceof UnauthorizedError)) throw err
        await transport.finishAuth(codes.at(-1)!)
      }
    }
    throw new Error('no connection after signing in')
  }

  const client = await connect()
  t.match(provider.client, { client_id: DEV_IDS.mcpClient.clientId })
  t.equal(codes.length, 1, 'one sign-in')
  t.ok(driver.visited.some((page) => page.body.includes('loginfmt')), 'through the account page')

  const { tools } = await client.listTools()
  t.same(tools.map((tool) => tool.name).sort(), ['delete_item', 'whoami'])
  const whoami = await client.callTool({ name: 'whoami', arguments: {} })
  t.match(whoami.structuredContent, { aud: DEV_IDS.mcpServer.clientId, scp: DEV_IDS.mcpServer.scope, oid: DEV_IDS.alice.objectId, azp: DEV_IDS.gateway.clientId })
})
