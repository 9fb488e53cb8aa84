/**
 * How a config error shows a value it refuses. The errors go to stderr, which is the pod log, so
 * no error may carry a secret: a field the schema marks `secret: true`, and anything that came from
 * `${env:NAME}` (typically a secret too), is described by its shape, never shown; a URL loses the
 * parts that carry credentials; a list or an object is never printed (it may hold either).
 */
export function shownValue (value: unknown, { secret, from }: { secret: boolean, from?: readonly string[] | undefined }): string {
  if (from !== undefined && from.length > 0) return `${shape(value)} (from ${from.map((name) => `\${env:${name}}`).join(' and ')})`
  if (secret || typeof value === 'object') return shape(value)
  return typeof value === 'string' ? truncated(JSON.stringify(withoutCredentials(value))) : String(value)
}

/**
 * A URL without its userinfo and query: `redis://:password@host`, `?sentinelPassword=` and Azure
 * Functions' `?code=` carry credentials. Up to the last @, since a password may hold an unencoded one.
 */
export function withoutCredentials (text: string): string {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)(.*)$/s.exec(text)
  if (m === null) return text
  const [, scheme = '', rest = ''] = m
  const at = rest.lastIndexOf('@')
  return `${scheme}${at < 0 ? rest : `***@${rest.slice(at + 1)}`}`.replace(/\?[^#]*/, '?***')
}

function shape (value: unknown): string {
  if (typeof value === 'string') return value === '' ? 'an empty string' : `a string of ${plural(value.length, 'character')}`
  if (Array.isArray(value)) return value.length === 0 ? 'an empty list' : `a list of ${plural(value.length, 'item')}`
  if (value === null) return 'null'
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`
}

function plural (n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`
}

function truncated (text: string): string {
  return text.length > 60 ? `${text.slice(0, 59)}…` : text
}
