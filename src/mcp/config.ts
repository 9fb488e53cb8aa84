import type { RawRoute } from '../config/schema'
import { withoutCredentials } from '../config/shown-value'
import type { McpConfig } from '../config/types'
import { isLoopbackHost } from './redirect-uris'

/**
 * The checks on an `mcp` block that a schema cannot express. Issues name the key path, like the
 * rest of the config; the result is undefined when there were any.
 */
export function resolveMcpConfig (route: RawRoute, path: string, issues: string[]): McpConfig | undefined {
  const raw = route.mcp
  if (raw === undefined) return undefined
  const before = issues.length
  if (route.user === undefined) issues.push(`${path}.mcp: needs the route's user block (MCP clients call as signed-in users; it says what OBO asks for)`)

  const publicUrl = new URL(raw.publicUrl)
  if (publicUrl.protocol !== 'https:' && !isLoopbackHost(publicUrl.hostname)) {
    issues.push(`${path}.mcp.publicUrl: must be https (MCP clients refuse authorization over plain http except on loopback), got ${withoutCredentials(raw.publicUrl)}`)
  }
  if (publicUrl.pathname.replace(/\/+$/, '') !== route.prefix || publicUrl.search !== '' || publicUrl.hash !== '') {
    issues.push(`${path}.mcp.publicUrl: its path must be the route's prefix ${route.prefix} (the metadata URLs are <origin>/.well-known/...${route.prefix}), got ${withoutCredentials(raw.publicUrl)}`)
  }

  const resources = new Set(raw.scopesSupported.map(resourceOf))
  if (resources.size > 1) {
    issues.push(`${path}.mcp.scopesSupported: all scopes must belong to one resource (the gateway's; Entra issues a token for one resource), got ${[...resources].join(', ')}`)
  }

  for (const [i, uri] of raw.redirectUris.entries()) {
    let parsed: URL | undefined
    try {
      parsed = new URL(uri)
    } catch {
      issues.push(`${path}.mcp.redirectUris.${i}: not a valid URI, got ${JSON.stringify(withoutCredentials(uri))}`)
      continue
    }
    if (parsed.hash !== '') issues.push(`${path}.mcp.redirectUris.${i}: a redirect URI must not have a fragment (RFC 6749 §3.1.2), got ${withoutCredentials(uri)}`)
  }

  if (issues.length > before) return undefined
  return {
    publicUrl,
    clientId: raw.clientId.toLowerCase(),
    redirectUris: [...raw.redirectUris],
    scopesSupported: [...raw.scopesSupported],
    scopeResource: resourceOf(raw.scopesSupported[0]!),
    tools: new Map(Object.entries(raw.tools ?? {}).map(([name, rule]) => [name, { requireScopes: [...rule.requireScopes] }]))
  }
}

function resourceOf (scope: string): string {
  return scope.slice(0, scope.lastIndexOf('/'))
}
