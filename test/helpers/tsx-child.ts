/**
 * Environment for a child process started with `--import tsx`. tap's coverage hook
 * (@tapjs/processinfo, injected through NODE_OPTIONS) would record the child's coverage of code
 * that tsx transpiled, not tap's loader: tap merges the raw ranges of both transpilations by file,
 * which corrupts the whole report (every file of the child at 100 %, or far below its real
 * figure). The child's code is covered by the in-process tests; its coverage is left out.
 */
export function tsxChildEnv (extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, ...extra, _TAPJS_PROCESSINFO_COVERAGE_: '0' }
}
