import { DEFAULTS } from '../config/defaults'
import type { CacheKey } from './cache-key'
import type { CacheEntry } from './cache-entry'
import { L1Cache, type L1Options } from './l1-cache'
import type { L2Redis } from './l2-redis'
import { SingleFlight } from './single-flight'

export type L2State = 'ok' | 'degraded' | 'disabled'

export interface TokenCacheStatus {
  l2: L2State
  l1: { entries: number, bytes: number, maxEntries: number, maxBytes: number }
  /** Keys with an acquisition under way in this process. */
  inFlight: number
}

/** Monotonic counters for metrics (a later issue exposes them). */
export interface TokenCacheCounters {
  hits: { l1: number, l2: number }
  misses: { l1: number, l2: number }
  /** Callers that joined another caller's acquisition in this process. */
  singleFlightWaits: number
  /** Acquisitions that waited for another instance holding the Redis lock. */
  lockWaits: number
  /** ... of which the other instance's L2 fill arrived in time. */
  lockWaitFills: number
  /** Calls to Entra made through the cache (foreground and background). */
  acquisitions: number
  /** Background refreshes of app tokens started / failed. */
  refreshes: number
  refreshFailures: number
  redisErrors: number
  /** L2 values that failed decryption or shape checks (tampered, unknown key id). */
  l2Rejected: number
  evictions: number
}

/** What an acquisition brings back; the cache turns it into an entry. */
export interface FreshToken {
  accessToken: string
  /** The downstream token's expiry as Entra stated it; null = unknown, the token is not cached. */
  expiresOn: Date | null
  /** When Entra suggests refreshing (refresh_in), if it said. */
  refreshOn?: Date | undefined
}

export interface CachePolicy {
  /** Epoch ms after which the entry must not be served (the incoming assertion's expiry). */
  notAfter?: number
  /** Refresh in the background once past the refresh point (app tokens). */
  refreshAhead?: boolean
}

export interface TokenCacheOptions {
  l1: L1Options
  l2?: L2Redis | undefined
  /** Entries end this long before the downstream token does; at most half the token's life. Default 300 s. */
  expiryMarginSeconds?: number
  /** Life of the cross-instance lock and longest wait for another instance's fill. Default 3000 ms. */
  lockMs?: number
  /** Poll interval while waiting for another instance's fill (grows to 4x). Default 25 ms. */
  lockPollMs?: number
  /** Background refresh failures are retried no sooner than this. Default 10 s. */
  refreshRetryMs?: number
  now?: () => number
}

export interface CacheResult {
  accessToken: string
  expiresOn: Date
  key: CacheKey
  /** Where the token came from. */
  source: 'l1' | 'l2' | 'entra' | 'uncached'
}

/**
 * L1 (in-process LRU) → L2 (Redis, encrypted) → single flight → Entra. Every lookup is a hash-map
 * operation on a SHA-256 key: O(1) in the number of cached users.
 */
export class TokenCache {
  readonly counters: TokenCacheCounters = {
    hits: { l1: 0, l2: 0 },
    misses: { l1: 0, l2: 0 },
    singleFlightWaits: 0,
    lockWaits: 0,
    lockWaitFills: 0,
    acquisitions: 0,
    refreshes: 0,
    refreshFailures: 0,
    redisErrors: 0,
    l2Rejected: 0,
    evictions: 0
  }

  private readonly l1: L1Cache
  private readonly l2: L2Redis | undefined
  private readonly flights = new SingleFlight<CacheResult>()
  private readonly refreshing = new SingleFlight<void>()
  private readonly marginMs: number
  private readonly lockMs: number
  private readonly pollMs: number
  private readonly refreshRetryMs: number
  private readonly now: () => number

  constructor (options: TokenCacheOptions) {
    this.l1 = new L1Cache(options.l1)
    this.l2 = options.l2
    this.marginMs = (options.expiryMarginSeconds ?? DEFAULTS.tokenCache.expiryMarginSeconds) * 1000
    this.lockMs = options.lockMs ?? DEFAULTS.tokenCache.lockMs
    this.pollMs = options.lockPollMs ?? 25
    this.refreshRetryMs = options.refreshRetryMs ?? 10_000
    this.now = options.now ?? Date.now
  }

  status (): TokenCacheStatus {
    return {
      l2: this.l2 === undefined ? 'disabled' : this.l2.state,
      l1: { entries: this.l1.size, bytes: this.l1.bytes, maxEntries: this.l1.options.maxEntries, maxBytes: this.l1.options.maxBytes },
      inFlight: this.flights.size
    }
  }

  /** Counters, with the L2 layer's own folded in. */
  stats (): TokenCacheCounters {
    this.counters.singleFlightWaits = this.flights.joined
    if (this.l2 !== undefined) {
      this.counters.redisErrors = this.l2.counters.errors
      this.counters.l2Rejected = this.l2.counters.rejected
    }
    return { ...this.counters, hits: { ...this.counters.hits }, misses: { ...this.counters.misses } }
  }

  async get (key: CacheKey, acquire: () => Promise<FreshToken>, policy: CachePolicy = {}): Promise<CacheResult> {
    const cached = this.l1.get(key, this.now())
    if (cached !== undefined) {
      this.counters.hits.l1++
      if (policy.refreshAhead === true) this.maybeRefresh(key, cached, acquire, policy)
      return result(key, cached, 'l1')
    }
    this.counters.misses.l1++
    return await this.flights.run(key, async () => await this.fill(key, acquire, policy))
  }

  /** Forgets a key everywhere (a downstream API rejected its token: CAE, revocation). */
  async evict (key: CacheKey): Promise<void> {
    this.counters.evictions++
    this.l1.delete(key)
    await this.l2?.delete(key)
  }

  async close (): Promise<void> {
    this.l1.clear()
    await this.l2?.close()
  }

  private async fill (key: CacheKey, acquire: () => Promise<FreshToken>, policy: CachePolicy): Promise<CacheResult> {
    const l2 = this.l2
    if (l2 === undefined) return await this.acquireAndStore(key, acquire, policy, undefined)

    const shared = await l2.get(key)
    if (shared !== undefined && this.usable(shared, policy)) {
      this.counters.hits.l2++
      this.l1.set(key, shared, this.now())
      return result(key, shared, 'l2')
    }
    this.counters.misses.l2++

    const lock = await l2.tryLock(key, this.lockMs)
    if (lock === 'held') {
      this.counters.lockWaits++
      const filled = await this.waitForFill(l2, key, policy)
      if (filled !== undefined) {
        this.counters.lockWaitFills++
        this.l1.set(key, filled, this.now())
        return result(key, filled, 'l2')
      }
      // The other instance failed, vanished or is too slow: ask Entra ourselves.
      return await this.acquireAndStore(key, acquire, policy, undefined)
    }
    if (lock !== undefined) {
      // Another instance may have filled and released the lock between our read and our lock.
      const filled = await l2.get(key)
      if (filled !== undefined && this.usable(filled, policy)) {
        await l2.unlock(key, lock)
        this.counters.hits.l2++
        this.l1.set(key, filled, this.now())
        return result(key, filled, 'l2')
      }
    }
    return await this.acquireAndStore(key, acquire, policy, lock)
  }

  private async waitForFill (l2: L2Redis, key: CacheKey, policy: CachePolicy): Promise<CacheEntry | undefined> {
    const deadline = this.now() + this.lockMs
    let interval = this.pollMs
    while (this.now() < deadline) {
      await sleep(Math.min(interval, Math.max(1, deadline - this.now())))
      interval = Math.min(interval * 2, this.pollMs * 4)
      const seen = await l2.peek(key)
      if (seen === undefined) return undefined // Redis is gone: stop waiting on it
      if (seen.entry !== undefined && this.usable(seen.entry, policy)) return seen.entry
      if (!seen.locked) return undefined // released without a fill (its Entra call failed)
    }
    return undefined
  }

  private async acquireAndStore (key: CacheKey, acquire: () => Promise<FreshToken>, policy: CachePolicy, lock: string | undefined): Promise<CacheResult> {
    try {
      this.counters.acquisitions++
      const fresh = await acquire()
      const entry = this.toEntry(fresh, policy)
      if (entry === undefined) {
        return { accessToken: fresh.accessToken, expiresOn: fresh.expiresOn ?? new Date(this.now()), key, source: 'uncached' }
      }
      this.l1.set(key, entry, this.now())
      await this.l2?.set(key, entry, this.now())
      return result(key, entry, 'entra')
    } finally {
      if (lock !== undefined) await this.l2?.unlock(key, lock)
    }
  }

  /** App tokens past their refresh point: serve the cached one, refresh once in the background. */
  private maybeRefresh (key: CacheKey, entry: CacheEntry, acquire: () => Promise<FreshToken>, policy: CachePolicy): void {
    if (entry.refreshAt === undefined || this.now() < entry.refreshAt || this.refreshing.has(key)) return
    this.refreshing.run(key, async () => {
      this.counters.refreshes++
      try {
        // Another instance may have refreshed it already.
        const shared = await this.l2?.get(key)
        if (shared !== undefined && this.usable(shared, policy) && (shared.refreshAt ?? Infinity) > this.now()) {
          this.l1.set(key, shared, this.now())
          return
        }
        const lock = this.l2 === undefined ? undefined : await this.l2.tryLock(key, this.lockMs)
        if (lock === 'held') return // another instance is refreshing; a later hit picks its result up
        await this.acquireAndStore(key, acquire, policy, lock)
      } catch {
        this.counters.refreshFailures++
        // Keep serving the cached token until it expires; try again a little later.
        this.l1.set(key, { ...entry, refreshAt: this.now() + this.refreshRetryMs }, this.now())
      }
    }).catch(() => {})
  }

  private usable (entry: CacheEntry, policy: CachePolicy): boolean {
    const now = this.now()
    return entry.expiresAt > now && (policy.notAfter === undefined || entry.expiresAt <= policy.notAfter)
  }

  private toEntry (fresh: FreshToken, policy: CachePolicy): CacheEntry | undefined {
    if (fresh.expiresOn === null) return undefined
    const now = this.now()
    const expiresOn = fresh.expiresOn.getTime()
    const life = expiresOn - now
    if (life <= 0) return undefined
    // The margin keeps a token from expiring on its way to the upstream; short-lived tokens keep at least half their life.
    let expiresAt = expiresOn - Math.min(this.marginMs, life / 2)
    if (policy.notAfter !== undefined) expiresAt = Math.min(expiresAt, policy.notAfter)
    if (expiresAt <= now) return undefined
    const entry: CacheEntry = { accessToken: fresh.accessToken, expiresOn, expiresAt }
    if (policy.refreshAhead === true) {
      // Entra's refresh_in when it sent one, otherwise half-way through the token's life.
      const suggested = fresh.refreshOn?.getTime()
      entry.refreshAt = Math.min(suggested !== undefined && suggested > now ? suggested : now + life / 2, expiresAt)
    }
    return entry
  }
}

function result (key: CacheKey, entry: CacheEntry, source: CacheResult['source']): CacheResult {
  return { accessToken: entry.accessToken, expiresOn: new Date(entry.expiresOn), key, source }
}

async function sleep (ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms))
}
