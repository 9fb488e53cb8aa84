/** Parameters of one Bearer challenge, in the order they are written. */
export type ChallengeParams = ReadonlyArray<readonly [name: string, value: string]>

/** RFC 7235 auth-params as quoted strings; `"` and `\` are escaped so no value can break the header. */
export function formatBearerChallenge (params: ChallengeParams): string {
  if (params.length === 0) return 'Bearer'
  return 'Bearer ' + params.map(([name, value]) => `${name}="${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`).join(', ')
}
