import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { devGatewayIdentity } from '../../src/dev/dev-identity'
import { DEV_IDS } from '../../src/emulator'
import { startOtlpReceiver } from '../helpers/otlp-receiver'
import { startTestbed } from '../helpers/testbed'

const CLI = resolve(__dirname, '../../src/cli.ts')
// Two gateway processes start from TypeScript one after the other.
t.setTimeout(240_000)

t.test('the standard OTEL_* variables turn tracing on in the obo-gateway process and shape it', async (t) => {
  const { emulator, kit, recorder } = await startTestbed(t)
  const receiver = await startOtlpReceiver()
  t.teardown(() => receiver.close())
  const file = join(mkdtempSync(join(tmpdir(), 'obo-trace-env-')), 'gateway.json')
  writeFileSync(file, JSON.stringify({
    // Starting a TypeScript CLI on a busy machine stalls the event loop; this test is not about shedding.
    server: { host: '127.0.0.1', port: 0, overload: { maxEventLoopDelayMs: 0 } },
    identity: devGatewayIdentity(emulator),
    routes: [{ prefix: '/rec', upstream: recorder.url, user: { requireScopes: ['access_as_user'], scopes: [`${DEV_IDS.sampleApi.identifierUri}/Items.Read`] } }]
  }))
  const bearer = `Bearer ${(await kit.signIn()).accessToken}`
  const traceId = 'a1b2c3d4e5f60718293a4b5c6d7e8f90'

  /** Runs the CLI with `env`, sends one request carrying a traceparent, and ends it with SIGTERM. */
  async function runOnce (t: Test, env: Record<string, string>, whileRunning: () => Promise<void> = async () => {}): Promise<{ exitCode: unknown, upstreamTraceparent: string }> {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('OTEL_')))
    const child = spawn(process.execPath, [...process.execArgv, CLI, '--config', file], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...clean, LOG_LEVEL: 'info', ...env } })
    t.teardown(() => child.kill('SIGKILL'))
    let output = ''
    child.stdout.on('data', (c: Buffer) => { output += c.toString() })
    child.stderr.on('data', (c: Buffer) => { output += c.toString() })
    let url: string | undefined
    while (url === undefined && child.exitCode === null) {
      url = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1]
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    if (url === undefined) throw new Error(`the gateway did not start:\n${output}`)
    const res = await request(`${url}/rec/x`, { headers: { authorization: bearer, traceparent: `00-${traceId}-00f067aa0ba902b7-01` } })
    t.equal(res.statusCode, 200, await res.body.text())
    await whileRunning()
    child.kill('SIGTERM')
    const [exitCode] = await once(child, 'exit')
    return { exitCode, upstreamTraceparent: String(recorder.requests.at(-1)?.headers.traceparent) }
  }

  await t.test('OTEL_EXPORTER_OTLP_ENDPOINT, _PROTOCOL, OTEL_SERVICE_NAME and the batch delay', async (t) => {
    const run = await runOnce(t, {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_SERVICE_NAME: 'gw-from-env',
      OTEL_BSP_SCHEDULE_DELAY: '50'
    }, async () => {
      // Exported while the process still runs: the 50 ms batch delay, not the shutdown flush.
      const spans = await receiver.waitFor((spans) => spans.some((s) => s.name === 'GET'))
      t.ok(spans.every((s) => s.resource['service.name'] === 'gw-from-env'))
      t.ok(spans.every((s) => s.traceId === traceId))
    })
    t.equal(run.exitCode, 0, 'SIGTERM ends it with exit code 0')
    t.match(run.upstreamTraceparent, new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`))
    t.same(receiver.spans().map((s) => s.name).sort(), ['GET', 'GET /rec/*', 'acquire token', 'validate token'])
  })

  await t.test('OTEL_TRACES_SAMPLER=always_off: nothing is recorded, the trace still continues to the upstream', async (t) => {
    const before = receiver.exports.length
    const run = await runOnce(t, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.url}/v1/traces`, OTEL_TRACES_SAMPLER: 'always_off' })
    t.equal(run.exitCode, 0)
    t.match(run.upstreamTraceparent, new RegExp(`^00-${traceId}-(?!00f067aa0ba902b7)[0-9a-f]{16}-00$`), 'the client\'s trace id, the gateway\'s span, not sampled')
    t.equal(receiver.exports.length, before, 'no export')
  })
})
