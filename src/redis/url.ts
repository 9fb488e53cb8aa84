/**
 * The URL forms accepted for `tokenCache.redis.url`:
 *
 * - `redis://[[user]:password@]host[:port][/db]` and `rediss://...` (TLS): one server.
 * - `redis+sentinel://[[user]:password@]host:port[,host:port...]/masterName[/db][?sentinelUsername=..&sentinelPassword=..]`
 *   (`rediss+sentinel://` for TLS to sentinels and servers): the user and password are the Redis servers'.
 * - `redis+cluster://[[user]:password@]host:port[,host:port...]` (`rediss+cluster://` for TLS): seed nodes of a cluster.
 */
export type RedisTarget =
  | { mode: 'standalone', url: string }
  | { mode: 'sentinel', sentinels: Array<{ host: string, port: number }>, name: string, db: number, tls: boolean, username?: string, password?: string, sentinelUsername?: string, sentinelPassword?: string }
  | { mode: 'cluster', nodes: Array<{ host: string, port: number }>, tls: boolean, username?: string, password?: string }

const MULTI_HOST = /^(rediss?)\+(sentinel|cluster):\/\/(?:([^@/]*)@)?([^/?#]+)(\/[^?#]*)?(?:\?([^#]*))?$/

export function parseRedisUrl (url: string): RedisTarget {
  if (/^rediss?:\/\//.test(url)) {
    const parsed = new URL(url)
    if (parsed.hostname === '') throw new Error('a redis:// URL needs a host')
    return { mode: 'standalone', url }
  }
  const m = MULTI_HOST.exec(url)
  if (m === null) throw new Error('expected redis://, rediss://, redis+sentinel://, rediss+sentinel://, redis+cluster:// or rediss+cluster://')
  const [, scheme, mode, userinfo, hostList, path, query] = m
  // An unencoded @ or / in the user or password leaves part of them among the hosts or in the
  // path: refused without showing either, since the message ends up in the log.
  if (hostList?.includes('@') === true || (userinfo === undefined && path?.includes('@') === true)) {
    throw new Error('the user or password holds an unencoded @ or / (percent-encode them: @ is %40, / is %2F)')
  }
  const tls = scheme === 'rediss'
  const hosts = (hostList ?? '').split(',').map((h) => parseHostPort(h, mode === 'sentinel' ? 26379 : 6379))
  const auth = parseUserinfo(userinfo)
  const segments = (path ?? '').split('/').filter(Boolean).map(decodeURIComponent)
  if (mode === 'cluster') {
    if (segments.length > 0) throw new Error('a cluster URL has no path (clusters have database 0 only)')
    return { mode: 'cluster', nodes: hosts, tls, ...auth }
  }
  const name = segments[0]
  if (name === undefined) throw new Error('a sentinel URL names the master after the hosts: redis+sentinel://host:26379/mymaster')
  const db = segments[1] === undefined ? 0 : Number(segments[1])
  if (!Number.isInteger(db) || db < 0 || segments.length > 2) throw new Error('a sentinel URL ends with /masterName or /masterName/db')
  const params = new URLSearchParams(query ?? '')
  const sentinelUsername = params.get('sentinelUsername') ?? undefined
  const sentinelPassword = params.get('sentinelPassword') ?? undefined
  return {
    mode: 'sentinel',
    sentinels: hosts,
    name,
    db,
    tls,
    ...auth,
    ...(sentinelUsername !== undefined ? { sentinelUsername } : {}),
    ...(sentinelPassword !== undefined ? { sentinelPassword } : {})
  }
}

function parseHostPort (text: string, defaultPort: number): { host: string, port: number } {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(text.trim())
  if (m?.[1] === undefined) throw new Error(`not a host[:port]: ${text}`)
  const port = m[2] === undefined ? defaultPort : Number(m[2])
  if (port < 1 || port > 65535) throw new Error(`port out of range: ${text}`)
  return { host: m[1].replace(/^\[|\]$/g, ''), port }
}

function parseUserinfo (userinfo: string | undefined): { username?: string, password?: string } {
  if (userinfo === undefined || userinfo === '') return {}
  const colon = userinfo.indexOf(':')
  const username = decodeURIComponent(colon < 0 ? userinfo : userinfo.slice(0, colon))
  const password = colon < 0 ? undefined : decodeURIComponent(userinfo.slice(colon + 1))
  return { ...(username !== '' ? { username } : {}), ...(password !== undefined ? { password } : {}) }
}
