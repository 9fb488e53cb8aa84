import type { IncomingHttpHeaders } from 'node:http'
import type { McpConfig } from '../config/types'
import { InsufficientScopeError, McpRequestRefusedError } from '../errors'
import type { RequestBody } from '../forwarding/request-body'
import type { Principal } from '../validation/principal'
import { qualifyScope } from './challenge'

/** What a POST to an MCP route asks for: the JSON-RPC method and, for tools/call, the tool. */
interface McpCall { method: string | undefined, name: string | undefined }

/** Throws when a request may not reach the MCP server; called before any token is acquired for it. */
export type ToolCallGuard = (principal: Principal, method: string, headers: IncomingHttpHeaders, body: RequestBody) => void

/**
 * The per-tool rules of an MCP route (undefined when it has none). The `Mcp-Method` / `Mcp-Name`
 * headers decide when the body cannot be read (it streams through); a body read for a replay is
 * inspected, and headers that disagree with it are refused, so they cannot hide a guarded call.
 * With no headers, a body that cannot be inspected or a batch is refused: either could hold a
 * guarded call.
 */
export function toolCallGuard (mcp: McpConfig): ToolCallGuard | undefined {
  if (mcp.tools.size === 0) return undefined
  return (principal, method, headers, body) => {
    // JSON-RPC requests travel in POST bodies; GET opens the event stream, DELETE ends a session.
    if (method !== 'POST') return
    const call = callOf(headers, body)
    if (call.method !== 'tools/call' || call.name === undefined) return
    const rule = mcp.tools.get(call.name)
    if (rule === undefined) return
    const granted = principal.kind === 'user' ? principal.scopes : []
    if (rule.requireScopes.some((s) => granted.includes(s))) return
    // The step-up asks for the route's base scopes too: MCP clients replace their scope with this one.
    const scopes = [...new Set([...mcp.scopesSupported, qualifyScope(rule.requireScopes[0]!, mcp.scopeResource)])]
    throw new InsufficientScopeError(`The tool ${call.name} needs one of the scopes: ${rule.requireScopes.join(', ')}`, scopes)
  }
}

function callOf (headers: IncomingHttpHeaders, body: RequestBody): McpCall {
  const fromHeaders = headerCall(headers)
  if (!body.replayable) {
    if (fromHeaders !== undefined) return fromHeaders
    throw new McpRequestRefusedError('This MCP route has per-tool rules and the request body is too large to inspect (or has no Content-Length); send Mcp-Method and Mcp-Name headers', 'not_inspectable')
  }
  const fromBody = bodyCall(body.bytes)
  if (fromHeaders !== undefined && (fromHeaders.method !== fromBody.method || (fromBody.method === 'tools/call' && fromHeaders.name !== fromBody.name))) {
    throw new McpRequestRefusedError('The Mcp-Method / Mcp-Name headers do not match the JSON-RPC body', 'header_mismatch')
  }
  return fromBody
}

function headerCall (headers: IncomingHttpHeaders): McpCall | undefined {
  const method = headers['mcp-method']
  const name = headers['mcp-name']
  if (method === undefined) return undefined
  if (typeof method !== 'string' || Array.isArray(name)) throw new McpRequestRefusedError('Mcp-Method and Mcp-Name may appear once each', 'header_mismatch')
  return { method, name }
}

function bodyCall (bytes: Buffer | undefined): McpCall {
  let message: unknown
  try {
    message = JSON.parse(bytes === undefined ? '' : bytes.toString('utf8'))
  } catch {
    throw new McpRequestRefusedError('This MCP route has per-tool rules and the request body is not JSON', 'not_json_rpc')
  }
  if (Array.isArray(message)) throw new McpRequestRefusedError('This MCP route has per-tool rules; send JSON-RPC messages one per request, not as a batch', 'batch')
  if (typeof message !== 'object' || message === null) throw new McpRequestRefusedError('This MCP route has per-tool rules and the request body is not a JSON-RPC message', 'not_json_rpc')
  const { method, params } = message as { method?: unknown, params?: { name?: unknown } }
  const name = typeof params === 'object' && params !== null ? params.name : undefined
  return { method: typeof method === 'string' ? method : undefined, name: typeof name === 'string' ? name : undefined }
}
