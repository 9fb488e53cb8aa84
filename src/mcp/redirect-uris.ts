const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost'])

export function isLoopbackHost (hostname: string): boolean {
  return LOOPBACK_HOSTS.has(hostname.toLowerCase())
}

/**
 * Whether `candidate` is on the allow-list. Entries match exactly, except that a loopback `http`
 * entry without a port allows any port with the same host, path and query (RFC 8252 §7.3): native
 * MCP clients listen on an ephemeral port for the redirect.
 */
export function redirectUriAllowed (allowList: readonly string[], candidate: string): boolean {
  let url: URL
  try {
    url = new URL(candidate)
  } catch {
    return false
  }
  if (url.hash !== '' || url.username !== '' || url.password !== '') return false
  return allowList.some((entry) => {
    if (entry === candidate) return true
    const allowed = new URL(entry)
    if (allowed.protocol !== 'http:' || allowed.port !== '' || !isLoopbackHost(allowed.hostname)) return false
    return url.protocol === 'http:' && url.hostname.toLowerCase() === allowed.hostname.toLowerCase() &&
      url.pathname === allowed.pathname && url.search === allowed.search
  })
}
