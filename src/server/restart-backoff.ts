/** The first restart of a worker that died comes quickly; one that keeps dying waits longer each time. */
export const RESTART_BASE_MS = 500
export const RESTART_MAX_MS = 30_000
/** A worker that lived this long is taken to be healthy: its next death starts the backoff over. */
export const STABLE_AFTER_MS = 30_000

/**
 * When to start a worker again after it died: `deathsInARow` counts the deaths (this one included)
 * of the slot's workers that did not live STABLE_AFTER_MS.
 */
export function restartDelayMs (deathsInARow: number): number {
  return Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** Math.max(0, deathsInARow - 1))
}
