import type { Dispatcher } from 'undici'
import { fetchJson } from '../net/fetch-json'

/** The two issuer forms a tenant's tokens may carry, as its OpenID metadata states them. */
export interface IssuerTemplates {
  /** e.g. https://login.microsoftonline.com/{tenantid}/v2.0 */
  v2: string
  /** e.g. https://sts.windows.net/{tenantid}/ */
  v1: string
}

interface OpenIdDocument { issuer?: unknown }

export async function loadIssuerTemplates (instance: string, tenant: string, dispatcher: Dispatcher, timeoutMs?: number): Promise<IssuerTemplates> {
  const [v2, v1] = await Promise.all([
    fetchJson<OpenIdDocument>(`${instance}/${tenant}/v2.0/.well-known/openid-configuration`, dispatcher, timeoutMs),
    fetchJson<OpenIdDocument>(`${instance}/${tenant}/.well-known/openid-configuration`, dispatcher, timeoutMs)
  ])
  if (typeof v2.issuer !== 'string' || typeof v1.issuer !== 'string') {
    throw new Error(`OpenID metadata of ${instance}/${tenant} has no issuer`)
  }
  return { v2: v2.issuer, v1: v1.issuer }
}
