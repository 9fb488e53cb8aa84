import { LRUCache } from 'lru-cache'
import type { CacheKey } from './cache-key'
import type { CacheEntry } from './cache-entry'

export interface L1Options {
  /** Most entries kept; least recently used go first. */
  maxEntries: number
  /** Most bytes kept, as estimated by {@link entrySize}. */
  maxBytes: number
}

// A key (64 hex chars), the entry object, its three numbers and the LRU's own bookkeeping per slot:
// what an entry costs beyond its token, measured by bench/acquisition-cache.ts (BENCHMARKS.md).
const ENTRY_OVERHEAD_BYTES = 320

/** Estimated bytes an entry holds: tokens are ASCII, one byte per character in V8. */
export function entrySize (entry: CacheEntry): number {
  return entry.accessToken.length + ENTRY_OVERHEAD_BYTES
}

/** The in-process layer: an LRU bounded by count and bytes, each entry expiring with its own life. */
export class L1Cache {
  private readonly lru: LRUCache<CacheKey, CacheEntry>

  constructor (readonly options: L1Options) {
    this.lru = new LRUCache<CacheKey, CacheEntry>({
      max: options.maxEntries,
      maxSize: options.maxBytes,
      sizeCalculation: entrySize,
      // Expired entries are dropped when read (and by LRU order); no timer per entry.
      ttlAutopurge: false,
      allowStale: false,
      updateAgeOnGet: false
    })
  }

  get (key: CacheKey, now = Date.now()): CacheEntry | undefined {
    const entry = this.lru.get(key)
    if (entry === undefined) return undefined
    if (entry.expiresAt <= now) {
      this.lru.delete(key)
      return undefined
    }
    return entry
  }

  set (key: CacheKey, entry: CacheEntry, now = Date.now()): void {
    const ttl = entry.expiresAt - now
    if (ttl <= 0) return
    this.lru.set(key, entry, { ttl })
  }

  delete (key: CacheKey): boolean {
    return this.lru.delete(key)
  }

  clear (): void {
    this.lru.clear()
  }

  get size (): number {
    return this.lru.size
  }

  get bytes (): number {
    return this.lru.calculatedSize
  }
}
