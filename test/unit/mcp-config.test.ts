import t from 'tap'
import { ConfigError, resolveConfig } from '../../src/config/load'
import { redirectUriAllowed } from '../../src/mcp/redirect-uris'

const TENANT = '7d3c1b52-6e5c-4a1f-9c0e-2f4b8a6d9e10'
const GATEWAY = '5617d05d-1e0b-4a47-9d1a-3f2c3b7a9e11'
const MCP_CLIENT = 'c0ffee00-1234-4abc-8def-0000000000c1'

function config (mcp: Record<string, unknown>, route: Record<string, unknown> = {}): unknown {
  return {
    identity: { tenantId: TENANT, clientId: GATEWAY, credential: { clientSecret: 's' } },
    routes: [{
      prefix: '/mcp',
      upstream: 'http://127.0.0.1:3001/mcp',
      user: { requireScopes: ['Tools.Read'], scopes: ['api://mcp-server/Mcp.Invoke'] },
      mcp,
      ...route
    }]
  }
}

const valid = {
  publicUrl: 'https://gateway.contoso.com/mcp',
  clientId: MCP_CLIENT,
  redirectUris: ['http://127.0.0.1/callback', 'https://claude.ai/api/mcp/auth_callback'],
  scopesSupported: [`api://${GATEWAY}/Tools.Read`],
  tools: { delete_item: { requireScopes: ['Tools.Admin'] } }
}

function issues (raw: unknown): string[] {
  try {
    resolveConfig(raw, { source: 'test' })
  } catch (err) {
    if (err instanceof ConfigError) return err.issues
    throw err
  }
  throw new Error('expected a ConfigError')
}

t.test('an mcp block is resolved with its tool rules and the resource of its scopes', async (t) => {
  const route = resolveConfig(config(valid), { source: 'test' }).routes[0]!
  t.equal(route.mcp?.publicUrl.href, 'https://gateway.contoso.com/mcp')
  t.equal(route.mcp?.clientId, MCP_CLIENT)
  t.same(route.mcp?.redirectUris, valid.redirectUris)
  t.equal(route.mcp?.scopeResource, `api://${GATEWAY}`)
  t.same(route.mcp?.tools.get('delete_item'), { requireScopes: ['Tools.Admin'] })
  t.equal(route.mcp?.tools.get('constructor'), undefined, 'tool names are data, not object keys')
  t.same(route.user?.scopes, ['api://mcp-server/Mcp.Invoke'], 'tool rules leave the OBO scopes alone')

  const noTools = resolveConfig(config({ ...valid, tools: undefined }), { source: 'test' }).routes[0]!
  t.equal(noTools.mcp?.tools.size, 0)
  t.equal(resolveConfig(config({ ...valid, publicUrl: 'http://127.0.0.1:8080/mcp' }), { source: 'test' }).routes[0]!.mcp?.publicUrl.port, '8080', 'plain http is fine on loopback')
})

t.test('mistakes in an mcp block are refused with the key path', async (t) => {
  t.same(issues(config({ ...valid, clientId: 'nope', extra: 1 })), ['routes.0.mcp.extra: unknown key', 'routes.0.mcp.clientId: expected a GUID, got "nope"'])
  t.match(issues(config({ ...valid, scopesSupported: ['Tools.Read'] })), [/routes\.0\.mcp\.scopesSupported\.0: expected a full scope URI/])
  t.match(issues(config({ ...valid, scopesSupported: [] })), [/routes\.0\.mcp\.scopesSupported: expected a non-empty list of full scope URIs/])
  t.match(issues(config({ ...valid, tools: { x: { requireScopes: ['api://g/Tools.Admin'] } } })), [/routes\.0\.mcp\.tools\.x\.requireScopes\.0: expected a scope name as it appears in scp/])
  t.match(issues(config({ ...valid, tools: { x: {} } })), [/routes\.0\.mcp\.tools\.x\.requireScopes: missing/])
  t.match(issues(config({ ...valid, redirectUris: ['not a uri'] })), [/routes\.0\.mcp\.redirectUris\.0: expected an absolute redirect URI/])
  t.match(issues(config({ ...valid, redirectUris: ['https://app.example/cb#frag'] })), [/routes\.0\.mcp\.redirectUris\.0: a redirect URI must not have a fragment/])
  t.match(issues(config({ ...valid, publicUrl: 'https://gateway.contoso.com/other' })), [/routes\.0\.mcp\.publicUrl: its path must be the route's prefix \/mcp/])
  t.match(issues(config({ ...valid, publicUrl: 'http://gateway.contoso.com/mcp' })), [/routes\.0\.mcp\.publicUrl: must be https/])
  t.same(issues(config({ ...valid, publicUrl: 'http://admin:McpPw@gateway.contoso.com/mcp' })),
    ['routes.0.mcp.publicUrl: must be https (MCP clients refuse authorization over plain http except on loopback), got http://***@gateway.contoso.com/mcp'], 'without the credentials')
  t.match(issues(config({ ...valid, scopesSupported: [`api://${GATEWAY}/Tools.Read`, 'api://other/Tools.Read'] })), [/routes\.0\.mcp\.scopesSupported: all scopes must belong to one resource/])
  t.match(issues(config(valid, { user: undefined, app: { requireRoles: ['R'], scopes: ['api://x/.default'] } })), [/routes\.0\.mcp: needs the route's user block/])
})

t.test('redirect URIs: exact matches, and loopback entries without a port match any port', async (t) => {
  const list = ['http://127.0.0.1/callback', 'http://localhost:5173/cb', 'https://app.example/cb?x=1', 'cursor://anysphere.cursor-mcp/oauth/callback']
  t.ok(redirectUriAllowed(list, 'http://127.0.0.1/callback'))
  t.ok(redirectUriAllowed(list, 'http://127.0.0.1:49152/callback'))
  t.ok(redirectUriAllowed(list, 'http://localhost:5173/cb'))
  t.ok(redirectUriAllowed(list, 'https://app.example/cb?x=1'))
  t.ok(redirectUriAllowed(list, 'cursor://anysphere.cursor-mcp/oauth/callback'))
  t.notOk(redirectUriAllowed(list, 'http://127.0.0.1:49152/other'), 'another path')
  t.notOk(redirectUriAllowed(list, 'http://127.0.0.1:49152/callback?next=evil'), 'another query')
  t.notOk(redirectUriAllowed(list, 'https://127.0.0.1:49152/callback'), 'another scheme')
  t.notOk(redirectUriAllowed(list, 'http://localhost:5174/cb'), 'a loopback entry with a port is exact')
  t.notOk(redirectUriAllowed(list, 'http://localhost:49152/callback'), 'localhost is not 127.0.0.1')
  t.notOk(redirectUriAllowed(list, 'http://evil@127.0.0.1:1/callback'), 'userinfo')
  t.notOk(redirectUriAllowed(list, 'http://127.0.0.1:1/callback#x'), 'a fragment')
  t.notOk(redirectUriAllowed(list, 'https://app.example/cb?x=1&y=2'))
  t.notOk(redirectUriAllowed(list, 'https://app.example.evil/cb?x=1'))
  t.notOk(redirectUriAllowed(list, 'not a uri'))
})
