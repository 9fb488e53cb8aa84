import type { McpConfig } from '../config/types'
import { mcpResourceUrl } from './challenge'

/** RFC 9728 protected resource metadata of one MCP route. */
export interface ProtectedResourceMetadata {
  resource: string
  authorization_servers: string[]
  scopes_supported: string[]
  bearer_methods_supported: ['header']
}

export function protectedResourceMetadata (prefix: string, mcp: McpConfig): ProtectedResourceMetadata {
  return {
    resource: mcpResourceUrl(prefix, mcp),
    // The route's own authorization-server facade stands in for Entra, which MCP clients cannot use as is.
    authorization_servers: [mcpResourceUrl(prefix, mcp)],
    scopes_supported: [...mcp.scopesSupported],
    bearer_methods_supported: ['header']
  }
}
