import { formatBearerChallenge } from '../challenges/www-authenticate'
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

/** The single place where an error becomes a status, headers and a JSON body, as its row in ERROR_TABLE says. */
export function errorResponse (err: unknown, ctx: ChallengeContext, correlationId: string): ErrorResponse {
  const known = knownError(err)
  const row = errorRow(known)
  const headers = row.headers?.(known) ?? {}
  if (row.challenge !== undefined) {
    headers['www-authenticate'] = formatBearerChallenge([
      ['realm', ''],
      ['authorization_uri', `${ctx.instance}/${ctx.tenantId}/oauth2/v2.0/authorize`],
      ['client_id', ctx.clientId],
      ...row.challenge(known, ctx)
    ])
  }
  return {
    status: typeof row.status === 'number' ? row.status : row.status(known),
    headers,
    body: { error: row.error, error_description: known.message, correlation_id: correlationId }
  }
}
