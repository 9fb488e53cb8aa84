import { readFileSync } from 'node:fs'
import { createSecureContext, rootCertificates, type SecureContext } from 'node:tls'
import { Agent } from 'undici'

export interface OutboundTimeouts {
  connectMs: number
  headersMs: number
  bodyMs: number
}

export const DEFAULT_IDENTITY_TIMEOUTS: OutboundTimeouts = { connectMs: 5_000, headersMs: 10_000, bodyMs: 10_000 }

/**
 * Giving TLS a `ca` list replaces Node's whole trust store, including NODE_EXTRA_CA_CERTS, so an
 * extra CA must be added to the public roots and to whatever NODE_EXTRA_CA_CERTS names.
 */
export function trustedCas (extra: string[]): string[] | undefined {
  if (extra.length === 0) return undefined
  const fromEnv = process.env.NODE_EXTRA_CA_CERTS
  const envCas = fromEnv ? [readFileSync(fromEnv, 'utf8')] : []
  return [...rootCertificates, ...envCas, ...extra]
}

/**
 * TLS connect options trusting `extra` CAs besides the usual ones. A `ca` list is parsed into a new
 * secure context on every connection (some 80 ms of CPU for the ~150 public roots), which is paid
 * for each attempt while a peer refuses connections (Entra down: every OBO call): the context is
 * built once here instead.
 */
export function trustOptions (extra: string[]): { secureContext?: SecureContext } {
  const ca = trustedCas(extra)
  return ca === undefined ? {} : { secureContext: createSecureContext({ ca }) }
}

/** One pooled dispatcher with bounded connect, header and body times. */
export function createHttpsAgent (options: { ca?: string[], timeouts?: OutboundTimeouts } = {}): Agent {
  const timeouts = options.timeouts ?? DEFAULT_IDENTITY_TIMEOUTS
  return new Agent({
    connect: { timeout: timeouts.connectMs, ...trustOptions(options.ca ?? []) },
    headersTimeout: timeouts.headersMs,
    bodyTimeout: timeouts.bodyMs
  })
}
