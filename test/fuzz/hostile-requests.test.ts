import t from 'tap'
import fc from 'fast-check'
import { Client } from 'undici'
import { buildGateway } from '../../src/app'
import { resolveConfig } from '../../src/config/load'
import { devGatewayIdentity } from '../../src/dev/dev-identity'
import { DEV_IDS } from '../../src/emulator'
import { fuzzSeed, hostileRequestArbitrary, judge, pathArbitrary, upstreamIndex, type HostileRequest } from '../helpers/hostile-requests'
import { startTestbed } from '../helpers/testbed'

// Property-based: fast-check generates hostile requests from a seed (FUZZ_SEED, else a fixed one);
// a failure names the seed and the shrunk request, and FUZZ_SEED=<seed> replays it. Real sockets
// (an undici Client), not fastify.inject: two of the defects guarded here live below Fastify (the
// header count Node's parser accepts, the raw Authorization lines light-my-request would rebuild).

const seed = fuzzSeed()

t.test(`hostile tokens, headers and paths (seed ${seed}): no 5xx, nothing invalid accepted or forwarded`, async (t) => {
  const bed = await startTestbed(t)
  const config = resolveConfig({
    server: { host: '127.0.0.1', port: 0, overload: { maxEventLoopDelayMs: 0 } },
    identity: devGatewayIdentity(bed.emulator),
    routes: [{ prefix: '/api', upstream: bed.recorder.url, user: { requireScopes: ['access_as_user'], scopes: [`${DEV_IDS.sampleApi.identifierUri}/Items.Read`] } }]
  }, { source: 'test' })
  const gateway = await buildGateway(config)
  t.teardown(() => gateway.close())
  const client = new Client(await gateway.listen({ host: '127.0.0.1', port: 0 }))
  t.teardown(() => client.close())
  const valid = (await bed.kit.signIn()).accessToken
  const material = { valid, sign: (claims: Record<string, unknown>) => bed.emulator.keys.sign(DEV_IDS.tenantId, claims) }
  const upstream = upstreamIndex(bed.recorder)

  let sent = 0
  let forwarded = 0
  const holds = async (request: HostileRequest): Promise<boolean> => {
    const verdict = await judge(client, request, String(sent++), valid, upstream)
    if (verdict.reachedUpstream) forwarded++
    if (verdict.violations.length > 0) throw new Error(verdict.violations.join('; '))
    return true
  }

  await fc.assert(fc.asyncProperty(hostileRequestArbitrary(material), holds), { seed, numRuns: 300 })
  // The path guard alone, with the valid token, so every case gets past authentication.
  const withToken = pathArbitrary().map((path): HostileRequest => ({ method: 'GET', path, headers: ['authorization', `Bearer ${valid}`] }))
  await fc.assert(fc.asyncProperty(withToken, holds), { seed, numRuns: 300 })

  t.equal(bed.recorder.requests.length, forwarded, `${sent} requests, ${forwarded} forwarded, each judged`)
  t.ok(forwarded > 0, 'valid requests do get through, so the properties were not vacuous')
  t.ok(forwarded < sent / 2, 'and most hostile ones did not')
})
