/** K: a parsed key; the set only stores and hands them out. */
export interface KeySetOptions<K> {
  /** Fetches and parses the tenant's JWKS; bounded in time by its caller's dispatcher. */
  fetchKeys: () => Promise<Map<string, K>>
  /** Least time between two fetches caused by unknown kids. */
  cooldownMs: number
  /** Background refresh period, jittered by ±1/12 of itself (12 h ± 1 h by default). */
  refreshIntervalMs: number
  now?: () => number
  /** Schedules the background refresh; the timer must not keep the process alive. */
  schedule?: (run: () => void, delayMs: number) => { cancel: () => void }
  onRefreshError?: (err: unknown) => void
}

/**
 * 'unavailable': the keys could not be fetched (never, or not on the latest attempt), so an
 * unknown kid may well be a key published since: the caller must not call the token invalid.
 */
export type KeyLookup<K> =
  | { found: true, key: K }
  | { found: false, reason: 'unknown-kid' | 'unavailable' }

/** 'stale': keys were loaded once, but the latest refresh failed (they stay in use). */
export type KeySetState = 'loaded' | 'stale' | 'not_loaded'

/**
 * One tenant's signing keys. Entra rolls keys with no fixed schedule, so an unknown kid may be a
 * new key: it causes a refetch, but at most one per cooldown and shared by every request waiting
 * for it. Random kids therefore cost one fetch per cooldown, and a genuinely new key is learned at
 * most one cooldown after it is first seen. A failed refresh keeps the last good keys.
 */
export class TenantKeySet<K> {
  private keys = new Map<string, K>()
  private loaded = false
  private lastRefreshFailed = false
  private lastAttemptAt = Number.NEGATIVE_INFINITY
  private inflight: Promise<void> | undefined
  private timer: { cancel: () => void } | undefined
  private closed = false
  private readonly now: () => number

  constructor (private readonly options: KeySetOptions<K>) {
    this.now = options.now ?? Date.now
  }

  /** The key if it is already loaded: no fetch, no waiting. */
  known (kid: string): K | undefined {
    return this.keys.get(kid)
  }

  async lookup (kid: string): Promise<KeyLookup<K>> {
    const known = this.keys.get(kid)
    if (known !== undefined) return { found: true, key: known }
    if (this.inflight !== undefined) {
      await this.inflight
    } else if (!this.loaded || this.now() - this.lastAttemptAt >= this.options.cooldownMs) {
      await this.refresh()
    }
    const key = this.keys.get(kid)
    if (key !== undefined) return { found: true, key }
    return { found: false, reason: this.loaded && !this.lastRefreshFailed ? 'unknown-kid' : 'unavailable' }
  }

  /** Fetches now (de-duplicated); errors leave the previous keys in place. */
  refresh (): Promise<void> {
    if (this.inflight !== undefined) return this.inflight
    this.lastAttemptAt = this.now()
    this.inflight = this.options.fetchKeys()
      .then((keys) => {
        this.keys = keys
        this.loaded = true
        this.lastRefreshFailed = false
      }, (err: unknown) => {
        this.lastRefreshFailed = true
        this.options.onRefreshError?.(err)
      })
      .finally(() => {
        this.inflight = undefined
        this.scheduleBackgroundRefresh()
      })
    return this.inflight
  }

  /** Whether keys were ever loaded (they stay in use after a failed refresh), and whether the latest refresh worked. */
  get state (): KeySetState {
    if (!this.loaded) return 'not_loaded'
    return this.lastRefreshFailed ? 'stale' : 'loaded'
  }

  close (): void {
    this.closed = true
    this.timer?.cancel()
  }

  private scheduleBackgroundRefresh (): void {
    if (this.closed || this.options.schedule === undefined) return
    this.timer?.cancel()
    const period = this.options.refreshIntervalMs
    const jitter = (Math.random() * 2 - 1) * (period / 12)
    // refresh() never rejects: failures go to onRefreshError and the last good keys stay.
    this.timer = this.options.schedule(() => { this.refresh() }, period + jitter)
  }
}

/** setTimeout that never holds the process open. */
export function unrefTimer (run: () => void, delayMs: number): { cancel: () => void } {
  const timer = setTimeout(run, delayMs)
  timer.unref()
  return { cancel: () => clearTimeout(timer) }
}
