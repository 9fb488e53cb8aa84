/**
 * The environment for a child process run under tsx rather than tap's own loader. Without
 * NODE_V8_COVERAGE: tsx's transform is not the one tap maps coverage through, so the child's
 * counts would land on the wrong lines and read as uncovered code.
 */
export function untracedEnv (): NodeJS.ProcessEnv {
  const { NODE_V8_COVERAGE: _coverage, ...env } = process.env
  return env
}
