import { formatBearerChallenge, type ChallengeParams } from '../challenges/www-authenticate'
import { qualifyScope, type McpChallenge } from '../mcp/challenge'
import { errorRow, knownError, type ChallengeContext } from './error-table'

export interface ErrorBody {
  error: string
  error_description: string
  correlation_id: string
}

export interface ErrorResponse {
  status: number
  headers: Record<string, string>
  body: ErrorBody
}

/**
 * The single place where an error becomes a status, headers and a JSON body, as its row in
 * ERROR_TABLE says. On an MCP route every challenge also names the protected resource metadata, a
 * 401 the scopes to ask for, and a 403's scopes are full URIs (what an MCP client asks Entra for).
 */
export function errorResponse (err: unknown, ctx: ChallengeContext, correlationId: string, mcp?: McpChallenge): ErrorResponse {
  const known = knownError(err)
  const row = errorRow(known)
  const headers = row.headers?.(known) ?? {}
  const status = typeof row.status === 'number' ? row.status : row.status(known)
  if (row.challenge !== undefined) {
    const params = row.challenge(known, ctx)
    headers['www-authenticate'] = formatBearerChallenge([
      ['realm', ''],
      ['authorization_uri', `${ctx.instance}/${ctx.tenantId}/oauth2/v2.0/authorize`],
      ['client_id', ctx.clientId],
      ...(mcp === undefined ? params : mcpParams(status, params, mcp))
    ])
  }
  return {
    status,
    headers,
    body: { error: typeof row.error === 'string' ? row.error : row.error(known), error_description: known.message, correlation_id: correlationId }
  }
}

function mcpParams (status: number, extra: ChallengeParams, mcp: McpChallenge): ChallengeParams {
  const params: Array<readonly [string, string]> = extra.map(([name, value]) => name === 'scope'
    ? [name, value.split(' ').map((s) => qualifyScope(s, mcp.scopeResource)).join(' ')]
    : [name, value])
  if (status === 401 && !params.some(([name]) => name === 'scope')) params.push(['scope', mcp.scope])
  params.push(['resource_metadata', mcp.resourceMetadata])
  return params
}
