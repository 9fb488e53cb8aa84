/** One challenge of a WWW-Authenticate header: its scheme and its parameters (names lower-cased). */
export interface Challenge {
  scheme: string
  params: Record<string, string>
}

const TOKEN = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/

/**
 * RFC 9110 §11.6.1 challenges, tolerant of what real services send: Microsoft Graph writes
 * `authorization_uri=https://…` unquoted, several challenges may share one header line, and a
 * header may be repeated. Values may be quoted strings (with `\` escapes) or bare runs up to the
 * next comma. Malformed input yields whatever parsed cleanly before it, never an exception.
 */
export function parseWwwAuthenticate (header: string | readonly string[] | undefined): Challenge[] {
  if (header === undefined) return []
  const lines = typeof header === 'string' ? [header] : header
  return lines.flatMap(parseLine)
}

function parseLine (line: string): Challenge[] {
  const challenges: Challenge[] = []
  let i = 0
  const skip = (): void => { while (i < line.length && (line[i] === ' ' || line[i] === '\t' || line[i] === ',')) i++ }
  const readToken = (): string => {
    const start = i
    while (i < line.length && TOKEN.test(line[i]!)) i++
    return line.slice(start, i)
  }
  let current: Challenge | undefined
  while (i < line.length) {
    skip()
    const name = readToken()
    if (name === '') {
      i++
      continue
    }
    let j = i
    while (line[j] === ' ' || line[j] === '\t') j++
    if (line[j] === '=' && current !== undefined && line[j + 1] !== '=') {
      i = j + 1
      while (line[i] === ' ' || line[i] === '\t') i++
      current.params[name.toLowerCase()] = line[i] === '"' ? readQuoted() : readBare()
    } else if (line[j] === '=') {
      // token68 right after the scheme (e.g. `Basic dXNlcg==`) or a stray value: keep going.
      i = j
      while (line[i] === '=') i++
    } else {
      current = { scheme: name, params: {} }
      challenges.push(current)
    }
  }
  return challenges

  function readQuoted (): string {
    let value = ''
    i++
    while (i < line.length && line[i] !== '"') {
      if (line[i] === '\\' && i + 1 < line.length) i++
      value += line[i]
      i++
    }
    i++
    return value
  }

  function readBare (): string {
    const start = i
    while (i < line.length && line[i] !== ',') i++
    return line.slice(start, i).trim()
  }
}

/**
 * The claims request of a Bearer `insufficient_claims` challenge, as JSON text: base64 as Entra
 * and Graph send it, or raw JSON as some libraries do. Undefined when there is none.
 */
export function claimsChallenge (challenges: readonly Challenge[]): string | undefined {
  for (const c of challenges) {
    if (c.scheme.toLowerCase() !== 'bearer' || c.params.error !== 'insufficient_claims') continue
    const raw = c.params.claims
    if (raw === undefined || raw === '') continue
    for (const candidate of [raw, Buffer.from(raw, 'base64').toString('utf8')]) {
      try {
        const parsed: unknown = JSON.parse(candidate)
        if (typeof parsed === 'object' && parsed !== null) return JSON.stringify(parsed)
      } catch {}
    }
  }
  return undefined
}
