import { hash } from 'node:crypto'
import type { Assertion } from '../validation/assertion'

/**
 * Cache keys are SHA-256 digests (64 hex characters) of an unambiguous encoding of everything that
 * changes the token Entra would issue. Neither the assertion nor any token can be read back from a
 * key, so keys may be logged and stored in Redis as they are.
 */
export type CacheKey = string

export interface OboKeyParts {
  /** The gateway's client id: two gateways sharing a Redis never share entries. */
  clientId: string
  tenantId: string
  /** The incoming access token, exactly as received; only its hash goes into the key. */
  assertion: Assertion
  scopes: readonly string[]
  /** The `claims` request parameter sent to Entra (step-up, CAE), if any. */
  claims?: string | undefined
  /** The caller's token declares cp1 (xms_cc), so the gateway declares it to Entra too. */
  cp1: boolean
}

export interface AppKeyParts {
  clientId: string
  tenantId: string
  scopes: readonly string[]
  cp1: boolean
}

export function oboCacheKey (parts: OboKeyParts): CacheKey {
  return digest(['obo', parts.clientId.toLowerCase(), parts.tenantId.toLowerCase(), normalizeScopes(parts.scopes), parts.claims ?? '', parts.cp1, parts.assertion.sha256])
}

export function appCacheKey (parts: AppKeyParts): CacheKey {
  return digest(['app', parts.clientId.toLowerCase(), parts.tenantId.toLowerCase(), normalizeScopes(parts.scopes), parts.cp1])
}

const normalized = new WeakMap<readonly string[], string[]>()

/**
 * Entra compares scopes case-insensitively and as a set: order, case and repeats change nothing.
 * Routes pass the same array on every request, so the result is remembered per array.
 */
export function normalizeScopes (scopes: readonly string[]): string[] {
  let result = normalized.get(scopes)
  if (result === undefined) {
    result = [...new Set(scopes.map((s) => s.trim().toLowerCase()).filter((s) => s.length > 0))].sort()
    normalized.set(scopes, result)
  }
  return result
}

function digest (parts: unknown[]): CacheKey {
  // JSON of an array: no separator ambiguity between parts ("a b" + "c" vs "a" + "b c").
  return hash('sha256', JSON.stringify(parts), 'hex')
}
