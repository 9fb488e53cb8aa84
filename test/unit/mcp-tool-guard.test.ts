import t from 'tap'
import { Readable } from 'node:stream'
import type { McpConfig } from '../../src/config/types'
import { InsufficientScopeError, McpRequestRefusedError } from '../../src/errors'
import type { RequestBody } from '../../src/forwarding/request-body'
import { toolCallGuard } from '../../src/mcp/tool-guard'
import type { Principal } from '../../src/validation/principal'

const mcp: McpConfig = {
  publicUrl: new URL('https://gw.example/mcp'),
  clientId: '3c0de000-0000-4000-8000-0000000003c1',
  redirectUris: ['http://127.0.0.1/callback'],
  scopesSupported: ['api://gw/Tools.Read'],
  scopeResource: 'api://gw',
  tools: new Map([['delete_item', { requireScopes: ['Tools.Admin', 'Tools.Owner'] }]])
}
const guard = toolCallGuard(mcp)!
const user = (scopes: string[]): Principal => ({ kind: 'user', tenantId: 't', clientId: 'c', objectId: 'o', expiresAt: 0, tokenVersion: '2.0', subject: 's', scopes, clientCapabilities: [], authContexts: [] })
const app: Principal = { kind: 'app', tenantId: 't', clientId: 'c', objectId: 'o', expiresAt: 0, tokenVersion: '2.0', roles: ['Tools.Admin'] }
const json = (message: unknown): RequestBody => ({ replayable: true, bytes: Buffer.from(JSON.stringify(message)) })
const call = (name: string): RequestBody => json({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name, arguments: {} } })
const streaming: RequestBody = { replayable: false, stream: Readable.from([]) }
const reader = user(['Tools.Read'])

function reasonOf (fn: () => void): string | undefined {
  try {
    fn()
  } catch (err) {
    if (err instanceof McpRequestRefusedError) return err.reason
    throw err
  }
  return undefined
}

t.test('no rules, no guard', async (t) => {
  t.equal(toolCallGuard({ ...mcp, tools: new Map() }), undefined)
})

t.test('from the JSON-RPC body: a guarded tool needs one of its scopes', async (t) => {
  t.doesNotThrow(() => { guard(reader, 'POST', {}, call('get_item')) }, 'an unguarded tool')
  t.doesNotThrow(() => { guard(reader, 'POST', {}, json({ jsonrpc: '2.0', id: 1, method: 'tools/list' })) }, 'another method')
  t.doesNotThrow(() => { guard(user(['Tools.Owner']), 'POST', {}, call('delete_item')) }, 'any of the scopes')
  t.throws(() => { guard(reader, 'POST', {}, call('delete_item')) }, new InsufficientScopeError('The tool delete_item needs one of the scopes: Tools.Admin, Tools.Owner', ['api://gw/Tools.Read', 'api://gw/Tools.Admin']))
  t.throws(() => { guard(app, 'POST', {}, call('delete_item')) }, InsufficientScopeError, 'app roles are not scopes')
  t.throws(() => { guard(user(['tools.admin']), 'POST', {}, call('delete_item')) }, InsufficientScopeError, 'names compare exactly')
  t.doesNotThrow(() => { guard(reader, 'GET', {}, streaming) }, 'GET (the event stream) and DELETE carry no calls')
})

t.test('from the headers when the body streams through', async (t) => {
  const headers = (method: string, name?: string) => ({ 'mcp-method': method, ...(name === undefined ? {} : { 'mcp-name': name }) })
  t.doesNotThrow(() => { guard(reader, 'POST', headers('tools/call', 'get_item'), streaming) })
  t.throws(() => { guard(reader, 'POST', headers('tools/call', 'delete_item'), streaming) }, InsufficientScopeError)
  t.doesNotThrow(() => { guard(user(['Tools.Admin']), 'POST', headers('tools/call', 'delete_item'), streaming) })
  t.equal(reasonOf(() => { guard(reader, 'POST', {}, streaming) }), 'not_inspectable', 'no headers and a body too large to inspect')
})

t.test('refusals: batches, bodies that are not JSON-RPC, headers that disagree with the body', async (t) => {
  t.equal(reasonOf(() => { guard(reader, 'POST', {}, json([{ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'get_item' } }])) }), 'batch')
  t.equal(reasonOf(() => { guard(reader, 'POST', {}, { replayable: true, bytes: Buffer.from('{not json') }) }), 'not_json_rpc')
  t.equal(reasonOf(() => { guard(reader, 'POST', {}, { replayable: true, bytes: undefined }) }), 'not_json_rpc')
  t.equal(reasonOf(() => { guard(reader, 'POST', {}, json('tools/call')) }), 'not_json_rpc')
  t.equal(reasonOf(() => { guard(reader, 'POST', { 'mcp-method': 'tools/list' }, call('delete_item')) }), 'header_mismatch', 'headers cannot hide a guarded call')
  t.equal(reasonOf(() => { guard(reader, 'POST', { 'mcp-method': 'tools/call', 'mcp-name': 'get_item' }, call('delete_item')) }), 'header_mismatch')
  t.throws(() => { guard(reader, 'POST', { 'mcp-method': ['tools/call', 'ping'] }, streaming) }, McpRequestRefusedError)
  t.doesNotThrow(() => { guard(reader, 'POST', { 'mcp-method': 'tools/call', 'mcp-name': 'get_item' }, call('get_item')) }, 'headers that agree')
})
