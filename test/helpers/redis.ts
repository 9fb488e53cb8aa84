import Redis from 'ioredis'
import type { Test } from 'tap'

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

export async function redisAnswers (url: string): Promise<boolean> {
  const probe = new Redis(url, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false })
  probe.on('error', () => {})
  try {
    await probe.connect()
    return await probe.ping() === 'PONG'
  } catch {
    return false
  } finally {
    probe.disconnect()
  }
}

/** Redis tests fail under CI when Redis is missing (CI must provide it) and skip, loudly, elsewhere. */
export async function needRedis (t: Test): Promise<boolean> {
  if (await redisAnswers(REDIS_URL)) return true
  if (process.env.CI) t.fail(`Redis does not answer at ${REDIS_URL}; CI must provide one`)
  else t.pass('needs Redis', { skip: `Redis does not answer at ${REDIS_URL} (set REDIS_URL or start redis-server to run this)` })
  return false
}
