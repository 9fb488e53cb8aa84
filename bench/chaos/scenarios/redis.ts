import { spawnSync } from 'node:child_process'
import { freePort } from '../../../src/net/free-port'
import { startUpstreamRecorder } from '../../../test/helpers/upstream-recorder'
import { killRedis, startRedis } from '../redis-server'
import { drive, gatewayConfig, report, startIdentity, startLocalGateway } from '../rig'

const PHASE_SECONDS = 15

/**
 * The token cache's Redis (a private redis-server on a free port) killed with SIGKILL under load,
 * then restarted on the same port: 200 returning users (12 in flight) and new users, each an OBO
 * call, an L2 write and a Redis lock (4 in flight). Every request should still be answered 200.
 */
export async function redis (): Promise<void> {
  const port = await freePort()
  let server = await startRedis(port)
  const identity = await startIdentity()
  const recorder = await startUpstreamRecorder()
  const { app, url } = await startLocalGateway(gatewayConfig(identity.emulator, recorder.url, {
    tokenCache: { redis: { url: `redis://127.0.0.1:${port}` }, encryptionKey: 'chaos-redis-run-key-0123456789abcdef' }
  }))
  const returning = Array.from({ length: 200 }, identity.newUser)
  const lines: string[] = []
  const phase = async (name: string, during?: () => Promise<void>): Promise<void> => {
    const [r, n] = await Promise.all([
      drive(url, { seconds: PHASE_SECONDS, concurrency: 12, next: (i) => ({ token: returning[i % returning.length] }) }),
      drive(url, { seconds: PHASE_SECONDS, concurrency: 4, next: () => ({ token: identity.newUser() }) }),
      during?.()
    ])
    lines.push(`${name}, returning users: ${r.summary()}`)
    lines.push(`${name}, new users: ${n.summary()}`)
  }
  const keys = (): string => spawnSync('redis-cli', ['-p', String(port), 'dbsize'], { encoding: 'utf8' }).stdout.trim()
  await phase('Redis up')
  lines.push(`keys in Redis before the kill: ${keys()}`)
  await phase('Redis killed (SIGKILL) 1 s in', async () => {
    await new Promise((resolve) => setTimeout(resolve, 1000))
    await killRedis(server)
  })
  await phase('Redis restarted 1 s in', async () => {
    await new Promise((resolve) => setTimeout(resolve, 1000))
    server = await startRedis(port)
  })
  await phase('Redis back')
  lines.push(`keys in the restarted (empty) Redis at the end: ${keys()}`)
  const oboCalls = identity.emulator.records.tokenRequests().filter((r) => r.grantType.includes('jwt-bearer')).length
  lines.push(`OBO calls to Entra over the run: ${oboCalls.toLocaleString('en-US')}`)
  await app.close()
  await killRedis(server)
  await recorder.close()
  await identity.close()
  report(`redis: the token cache's Redis killed and restarted under load (redis-server on port ${port})`, lines)
}
