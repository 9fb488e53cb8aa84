import type { McpConfig } from '../config/types'

/** What every challenge on an MCP route adds (DESIGN.md pinned details), fixed per route. */
export interface McpChallenge {
  /** `<origin>/.well-known/oauth-protected-resource<prefix>`, in every 401 and 403. */
  resourceMetadata: string
  /** `scopesSupported`, space-separated: the `scope` of a 401. */
  scope: string
  /** Qualifies a bare scope name (as `requireScopes` has them) into the full URI a client asks Entra for. */
  scopeResource: string
}

/** The route as MCP clients see it: `<origin of publicUrl><prefix>`. */
export function mcpResourceUrl (prefix: string, mcp: McpConfig): string {
  return `${mcp.publicUrl.origin}${prefix}`
}

export function protectedResourceMetadataUrl (prefix: string, mcp: McpConfig): string {
  return `${mcp.publicUrl.origin}/.well-known/oauth-protected-resource${prefix}`
}

export function mcpChallenge (prefix: string, mcp: McpConfig): McpChallenge {
  return {
    resourceMetadata: protectedResourceMetadataUrl(prefix, mcp),
    scope: mcp.scopesSupported.join(' '),
    scopeResource: mcp.scopeResource
  }
}

export function qualifyScope (scope: string, resource: string): string {
  return scope.includes('/') ? scope : `${resource}/${scope}`
}
