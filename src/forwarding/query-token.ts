import { TokenInQueryError } from '../errors'

// No spelling of access_token (RFC 6750 §2.3), however encoded, is shorter.
const SHORTEST = 'access_token'.length

/**
 * Refuses a URL whose query carries `access_token` (RFC 6750 §2.3). The gateway never takes a
 * token from the query, but the upstream would get the query as sent: the caller's own token,
 * which upstreams that read it there (ASP.NET Core SignalR hubs, many WebSocket APIs) would see
 * beside ours. Refused rather than stripped: the token is in URLs, logs and browser history by
 * now, and the client should hear so rather than have it quietly work.
 *
 * Names are compared as upstream frameworks read them: percent-decoded, `+` as space, in any
 * letter case (ASP.NET), `;` as a separator too, and with PHP's renaming of `.` and space to `_`
 * and of `access_token[...]` to an array under `access_token`.
 */
export function refuseQueryToken (url: string): void {
  const start = url.indexOf('?')
  if (start === -1) return
  for (const pair of url.slice(start + 1).split(/[&;]/)) {
    const end = pair.indexOf('=')
    const name = end === -1 ? pair : pair.slice(0, end)
    if (name.length >= SHORTEST && normalized(name) === 'access_token') {
      throw new TokenInQueryError()
    }
  }
}

function normalized (name: string): string {
  const spaced = name.replaceAll('+', ' ')
  let decoded = spaced
  try {
    decoded = decodeURIComponent(spaced)
  } catch {
    // Malformed percent-encoding: compared as sent.
  }
  const bracket = decoded.indexOf('[')
  return (bracket === -1 ? decoded : decoded.slice(0, bracket)).toLowerCase().replace(/[ .]/g, '_')
}
