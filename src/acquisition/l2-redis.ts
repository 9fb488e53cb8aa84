import { randomBytes } from 'node:crypto'
import type { Cluster, Redis } from 'ioredis'
import type { CacheKey } from './cache-key'
import { CacheCipher, CacheDecryptError } from './cache-crypto'
import { isCacheEntry, type CacheEntry } from './cache-entry'
import { connectRedis, isCluster } from '../redis/client'

export interface L2Options {
  url: string
  encryptionKey: string
  previousEncryptionKeys?: readonly string[]
  /** Bound on every Redis command; past it the command fails and the request goes on without L2. */
  commandTimeoutMs: number
  /** After a failure, Redis is left alone this long so requests do not each pay the timeout. */
  backoffMs?: number
  /** Prefix of every key; keys are `<prefix>{<sha256>}:t` (value) and `:l` (lock), one hash slot per entry. */
  keyPrefix?: string
  onError?: (err: Error) => void
}

export interface L2Counters {
  /** Commands that failed or timed out, and connection errors. */
  errors: number
  /** Values present but unreadable: tampered, unknown key id, malformed. */
  rejected: number
}

const UNLOCK = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"

/**
 * Redis as the shared layer. Every method resolves (never rejects) within about
 * `commandTimeoutMs`: a Redis that is down, slow or restarting only turns L2 into misses.
 * The offline queue is off, so nothing waits for a reconnection; ioredis reconnects by itself.
 */
export class L2Redis {
  readonly counters: L2Counters = { errors: 0, rejected: 0 }
  private readonly client: Redis | Cluster
  private readonly cipher: CacheCipher
  private readonly prefix: string
  private readonly timeoutMs: number
  private readonly backoffMs: number
  /**
   * A standalone or Sentinel client starts ioredis' commandTimeout when a command is issued, and
   * with the offline queue off nothing waits unsent: the command bounds itself, no timer of ours.
   */
  private readonly bounded: boolean
  private skipUntil = 0
  private closed = false

  constructor (private readonly options: L2Options) {
    this.cipher = new CacheCipher(options.encryptionKey, options.previousEncryptionKeys ?? [])
    this.prefix = options.keyPrefix ?? 'obo-gateway:v1:'
    this.timeoutMs = options.commandTimeoutMs
    this.backoffMs = options.backoffMs ?? 1000
    this.client = connectRedis(options.url, options.commandTimeoutMs)
    this.bounded = !isCluster(this.client)
    this.client.on('error', (err: Error) => { this.failed(err) })
  }

  /** 'ok' while connected and the last command succeeded; 'degraded' otherwise. */
  get state (): 'ok' | 'degraded' {
    return this.client.status === 'ready' && Date.now() >= this.skipUntil ? 'ok' : 'degraded'
  }

  valueKey (key: CacheKey): string {
    return `${this.prefix}{${key}}:t`
  }

  lockKey (key: CacheKey): string {
    return `${this.prefix}{${key}}:l`
  }

  async get (key: CacheKey): Promise<CacheEntry | undefined> {
    const valueKey = this.valueKey(key)
    const stored = await this.command((c) => c.get(valueKey))
    return stored === undefined || stored === null ? undefined : this.open(valueKey, stored)
  }

  /** The value and whether a lock is held on it, in one round trip (both keys share a slot). */
  async peek (key: CacheKey): Promise<{ entry: CacheEntry | undefined, locked: boolean } | undefined> {
    const valueKey = this.valueKey(key)
    const found = await this.command((c) => c.mget(valueKey, this.lockKey(key)))
    if (found === undefined) return undefined
    const [stored, lock] = found
    return { entry: stored == null ? undefined : this.open(valueKey, stored), locked: lock != null }
  }

  async set (key: CacheKey, entry: CacheEntry, now = Date.now()): Promise<void> {
    const ttl = Math.floor(entry.expiresAt - now)
    if (ttl <= 0) return
    const valueKey = this.valueKey(key)
    const sealed = this.cipher.encrypt(JSON.stringify(entry), valueKey)
    await this.command((c) => c.set(valueKey, sealed, 'PX', ttl))
  }

  async delete (key: CacheKey): Promise<void> {
    await this.command((c) => c.del(this.valueKey(key)))
  }

  /** SET NX PX: the lock's token when this caller holds it, 'held' when another does, undefined when Redis did not answer. */
  async tryLock (key: CacheKey, ms: number): Promise<string | 'held' | undefined> {
    const token = randomBytes(12).toString('hex')
    const answer = await this.command((c) => c.set(this.lockKey(key), token, 'PX', ms, 'NX'))
    if (answer === undefined) return undefined
    return answer === 'OK' ? token : 'held'
  }

  async unlock (key: CacheKey, token: string): Promise<void> {
    await this.command((c) => c.eval(UNLOCK, 1, this.lockKey(key), token))
  }

  /** Resolves true once connected, false after `timeoutMs` (the gateway starts either way). */
  async ready (timeoutMs: number): Promise<boolean> {
    if (this.client.status === 'ready') return true
    return await new Promise<boolean>((resolve) => {
      const done = (ok: boolean): void => {
        clearTimeout(timer)
        this.client.off('ready', onReady)
        resolve(ok)
      }
      const onReady = (): void => { done(true) }
      const timer = setTimeout(() => { done(false) }, timeoutMs)
      this.client.on('ready', onReady)
    })
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    try {
      await this.client.quit()
    } catch {
      this.client.disconnect()
    }
  }

  /** `valueKey` is the associated data: a value copied under another key does not decrypt. */
  private open (valueKey: string, stored: string): CacheEntry | undefined {
    try {
      const entry: unknown = JSON.parse(this.cipher.decrypt(stored, valueKey))
      if (isCacheEntry(entry)) return entry
    } catch (err) {
      if (!(err instanceof CacheDecryptError) && !(err instanceof SyntaxError)) throw err
    }
    this.counters.rejected++
    return undefined
  }

  private async command<T> (run: (client: Redis | Cluster) => Promise<T>): Promise<T | undefined> {
    if (this.closed || this.client.status !== 'ready' || Date.now() < this.skipUntil) return undefined
    try {
      return await (this.bounded ? run(this.client) : this.withDeadline(run(this.client)))
    } catch (err) {
      this.failed(err as Error)
      return undefined
    }
  }

  /**
   * A cluster command can outlive ioredis' commandTimeout, which bounds each send to a node, not
   * the MOVED/ASK/CLUSTERDOWN retries between them; this bounds the whole command.
   */
  private async withDeadline<T> (pending: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined
    try {
      return await Promise.race([
        pending,
        new Promise<never>((_resolve, reject) => {
          timer = setTimeout(() => { reject(new Error(`Redis did not answer within ${this.timeoutMs} ms`)) }, this.timeoutMs + 20)
        })
      ])
    } finally {
      clearTimeout(timer)
    }
  }

  private failed (err: Error): void {
    this.counters.errors++
    this.skipUntil = Date.now() + this.backoffMs
    this.options.onError?.(err)
  }
}
