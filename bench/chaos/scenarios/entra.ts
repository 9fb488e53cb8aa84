import { Pool } from 'undici'
import { startUpstreamRecorder } from '../../../test/helpers/upstream-recorder'
import { drive, gatewayConfig, report, shoot, startIdentity, startLocalGateway, Tally } from '../rig'

const CACHED_USERS = 100
const PHASE_SECONDS = 10
const TIMEOUT_MS = 3000

/**
 * Entra slow (2 s per OBO call), hanging (never within identity.timeoutMs, 3 s) and stopped, each
 * for 10 s under load: 100 users whose OBO tokens the gateway has cached (12 in flight) and users
 * it has never seen (4 in flight). Cached users must not notice; new users get 200 late, then a
 * 503 within the timeout, never a hang.
 */
export async function entra (): Promise<void> {
  const identity = await startIdentity()
  const recorder = await startUpstreamRecorder()
  const { app, url } = await startLocalGateway(gatewayConfig(identity.emulator, recorder.url, { identity: { timeoutMs: TIMEOUT_MS } }))
  const cached = Array.from({ length: CACHED_USERS }, identity.newUser)
  const warm = new Pool(url, { connections: 8 })
  const warmed = new Tally()
  for (const token of cached) { const r = await shoot(warm, { token }); warmed.add(r.status, r.ms) }
  await warm.close()
  const lines = [`warm-up: ${warmed.summary()}`]

  const phase = async (name: string): Promise<void> => {
    const [c, n] = await Promise.all([
      drive(url, { seconds: PHASE_SECONDS, concurrency: 12, next: (i) => ({ token: cached[i % cached.length] }) }),
      drive(url, { seconds: PHASE_SECONDS, concurrency: 4, next: () => ({ token: identity.newUser() }) })
    ])
    lines.push(`${name}, cached users: ${c.summary()}`)
    lines.push(`${name}, new users: ${n.summary()}`)
  }
  await phase('Entra answering')
  const slow = identity.emulator.failures.inject({ kind: 'slow', grant: 'obo', delayMs: 2000 })
  await phase('Entra slow (2 s)')
  slow.remove()
  const hang = identity.emulator.failures.inject({ kind: 'slow', grant: 'obo', delayMs: 10 * 60_000 })
  await phase(`Entra hanging (identity.timeoutMs ${TIMEOUT_MS} ms)`)
  hang.remove()
  await identity.close()
  await phase('Entra stopped')
  await app.close()
  await recorder.close()
  report('entra: Entra slow, hanging and stopped under load', lines)
}
