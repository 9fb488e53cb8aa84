import { YAMLError, parseDocument } from 'yaml'

/**
 * A config file's text as data, or what is wrong with its syntax: where, and in the parser's words,
 * but nothing quoted from the file. Both parsers quote the text around the mistake, and the line
 * they would quote may hold a secret; the message goes to the log.
 */
export function parseConfigText (text: string, format: 'JSON' | 'YAML'): { value: unknown } | { problem: string } {
  try {
    return { value: format === 'JSON' ? JSON.parse(text) : yamlValue(text) }
  } catch (err) {
    return { problem: `not valid ${format}: ${format === 'JSON' ? jsonProblem(text, err as Error) : yamlProblem(err as Error)}` }
  }
}

/**
 * yaml's warnings count as errors: yaml.parse() would print them with the line to stderr, and the
 * usual one, an unresolved tag, is an unquoted value starting with ! (a secret, say) that is lost.
 */
function yamlValue (text: string): unknown {
  const doc = parseDocument(text)
  const problem = doc.errors[0] ?? doc.warnings[0]
  if (problem !== undefined) throw problem
  return doc.toJS()
}

/** V8: `Unexpected token 'x', ..."tSecret": s3cr3t}" is not valid JSON`, or `... in JSON at position 12`. */
function jsonProblem (text: string, err: Error): string {
  return err.message
    .replace(/, (?:\.\.\.)?".*$/s, '')
    .replace(/ (?:in JSON )?at position (\d+).*$/s, (_match, offset: string) => ` at ${lineAndColumn(text, Number(offset))}`)
}

/**
 * yaml: `<sentence>[: <token>] at line 3, column 3:` and the line itself, the token as JSON
 * (`: "]"`) or as it stands (`extra characters: |xyz`, `Unresolved tag: !xyz`, an unresolved
 * alias's name: a value starting with * or !); BAD_DQ_ESCAPE names the escape inside a string.
 */
function yamlProblem (err: Error): string {
  const sentence = err instanceof YAMLError && err.code === 'BAD_DQ_ESCAPE'
    ? 'Invalid escape sequence in a double-quoted string'
    : (err.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '').replace(/: (?:".*"|\S+)$/, '')
  const at = err instanceof YAMLError ? err.linePos?.[0] : undefined
  return at === undefined ? sentence : `${sentence} at line ${at.line}, column ${at.col}`
}

function lineAndColumn (text: string, offset: number): string {
  const before = text.slice(0, offset).split('\n')
  return `line ${before.length}, column ${(before.at(-1)?.length ?? 0) + 1}`
}
