import type { SeedApplication } from '../seed-schema'

export type RedirectKind = 'spa' | 'web' | 'publicClient'

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]'])

/**
 * The platform a redirect URI is registered under, or undefined when it is not registered. Exact
 * match, except that a public client's http loopback entry matches any port (RFC 8252 §7.3), as in
 * Entra.
 */
export function registeredRedirect (app: SeedApplication, uri: string): RedirectKind | undefined {
  const registered = app.redirectUris ?? {}
  for (const kind of ['spa', 'web', 'publicClient'] as const) {
    if ((registered[kind] ?? []).includes(uri)) return kind
  }
  const asked = parse(uri)
  if (asked === undefined || asked.protocol !== 'http:' || !LOOPBACK_HOSTS.has(asked.hostname)) return undefined
  const anyPort = (registered.publicClient ?? []).some((entry) => {
    const known = parse(entry)
    return known !== undefined && known.protocol === 'http:' && known.hostname === asked.hostname &&
      known.pathname === asked.pathname && known.search === asked.search
  })
  return anyPort ? 'publicClient' : undefined
}

/** Every registered redirect URI of the app (logout accepts any of them as post_logout_redirect_uri). */
export function allRedirectUris (app: SeedApplication): string[] {
  const registered = app.redirectUris ?? {}
  return [...(registered.spa ?? []), ...(registered.web ?? []), ...(registered.publicClient ?? [])]
}

function parse (uri: string): URL | undefined {
  try {
    return new URL(uri)
  } catch {
    return undefined
  }
}
