import { EntraError } from '../entra-errors'

/** What an /authorize `claims` request asks of the sign-in itself. */
export interface SignInClaims {
  /** A second factor is due: `acrs`, `amr` naming mfa, or conditional-access policy ids were asked for. */
  requiresMfa: boolean
  /** `acrs` values: the auth contexts the access token is to carry. */
  authContexts: string[]
}

interface ClaimRequest { essential?: unknown, value?: unknown, values?: unknown }

function values (request: ClaimRequest | undefined): string[] {
  return [request?.value, ...(Array.isArray(request?.values) ? request.values : [])].filter((v): v is string => typeof v === 'string')
}

/** Reads `access_token` and `id_token` requests alike; unparsable JSON is Entra's AADSTS90100. */
export function signInClaims (claims: string | undefined): SignInClaims {
  if (claims === undefined) return { requiresMfa: false, authContexts: [] }
  let parsed: unknown
  try {
    parsed = JSON.parse(claims)
  } catch {
    throw new EntraError('invalid_request', 90100, "The parameter 'claims' isn't valid JSON.")
  }
  const sections = ['access_token', 'id_token']
    .map((name) => (parsed as Record<string, Record<string, ClaimRequest | undefined> | undefined> | null)?.[name])
    .filter((s): s is Record<string, ClaimRequest | undefined> => typeof s === 'object' && s !== null)
  const authContexts = [...new Set(sections.flatMap((s) => values(s.acrs)))]
  const policyIds = sections.flatMap((s) => [...values(s.polids), ...values(s.capolids)])
  const amrMfa = sections.some((s) => values(s.amr).some((v) => v.toLowerCase() === 'mfa'))
  return { requiresMfa: authContexts.length > 0 || policyIds.length > 0 || amrMfa, authContexts }
}
