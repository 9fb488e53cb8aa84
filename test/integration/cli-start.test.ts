import t, { type Test } from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { devGatewayIdentity } from '../../src/dev/dev-identity'
import { DEV_IDS, startEmulator } from '../../src/emulator'
import { tsxChildEnv } from '../helpers/tsx-child'

// The gateway, the sample API and what they load, started as a user would (separate from
// cli.test.ts so that each file's child processes fit in its time limit).
const CLI = resolve(__dirname, '../../src/cli.ts')
const dir = mkdtempSync(join(tmpdir(), 'obo-cli-start-'))

function run (args: string[], script = CLI): { status: number | null, stdout: string, stderr: string } {
  const res = spawnSync(process.execPath, ['--import', 'tsx', script, ...args], { encoding: 'utf8', env: tsxChildEnv({ LOG_LEVEL: 'error' }), timeout: 60_000 })
  return { status: res.status, stdout: res.stdout, stderr: res.stderr }
}

/** {@link run} without blocking this process, for a child that talks to a server running here. */
async function runBeside (args: string[], env: Record<string, string>): Promise<{ status: number | null, stdout: string, stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { env: tsxChildEnv(env), stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const [status] = await once(child, 'close') as [number | null]
  return { status, stdout, stderr }
}

function file (name: string, text: string): string {
  const path = join(dir, name)
  writeFileSync(path, text)
  return path
}

/** A port something else already listens on. */
async function takenPort (t: Test): Promise<number> {
  const server: Server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return (server.address() as { port: number }).port
}

function gatewayConfig (name: string, server: string): string {
  return file(name, `
server: ${server}
identity:
  instance: https://127.0.0.1:1
  tenantId: 7d3c1b52-6e5c-4a1f-9c0e-2f4b8a6d9e10
  clientId: 5617d05d-1e0b-4a47-9d1a-3f2c3b7a9e11
  credential: { clientSecret: s }
routes:
  - prefix: /graph
    upstream: https://graph.example/v1.0
    user: { requireScopes: [access_as_user], scopes: [https://graph.example/User.Read] }
`)
}

t.test('a port that is taken stops the start with exit 1 and one line naming it', async (t) => {
  const port = await takenPort(t)
  const main = run(['--config', gatewayConfig('busy.yaml', `{ host: 127.0.0.1, port: ${port} }`)])
  t.equal(main.status, 1)
  t.equal(main.stderr, `obo-gateway: cannot listen on 127.0.0.1:${port}: the address is in use\n`)
  const admin = run(['--config', gatewayConfig('busy-admin.yaml', `{ host: 127.0.0.1, port: 0, adminPort: ${port} }`)])
  t.equal(admin.status, 1, 'no gateway without its health endpoints')
  t.equal(admin.stderr, `obo-gateway: cannot listen on 127.0.0.1:${port} (server.adminPort): the address is in use\n`)
  const sample = run(['sample-api', '--instance', 'https://127.0.0.1:1', '--port', String(port)])
  t.equal(sample.status, 1)
  t.equal(sample.stderr, `obo-gateway: cannot listen on 127.0.0.1:${port}: the address is in use\n`)
})

t.test('a start that fails against a reachable authority prints its one error line, not the key store\'s closing', async (t) => {
  // The keys are being fetched when the listen fails; closing the gateway stops that fetch.
  const emulator = await startEmulator({ dataDir: join(dir, 'emulator') })
  t.teardown(() => emulator.close())
  const port = await takenPort(t)
  const config = (name: string, server: Record<string, unknown>): string => file(name, JSON.stringify({
    server: { host: '127.0.0.1', ...server },
    identity: devGatewayIdentity(emulator),
    routes: [{ prefix: '/api', upstream: 'http://127.0.0.1:1', user: { requireScopes: ['access_as_user'], scopes: [`${DEV_IDS.sampleApi.identifierUri}/Items.Read`] } }]
  }))
  const main = await runBeside(['--config', config('busy-live.json', { port })], { LOG_LEVEL: 'info' })
  t.equal(main.status, 1)
  t.equal(main.stderr, `obo-gateway: cannot listen on 127.0.0.1:${port}: the address is in use\n`)
  t.equal(main.stdout, '', 'and not a log line, even at info')
  const admin = await runBeside(['--config', config('busy-live-admin.json', { port: 0, adminPort: port })], { LOG_LEVEL: 'info' })
  t.equal(admin.status, 1)
  t.equal(admin.stderr, `obo-gateway: cannot listen on 127.0.0.1:${port} (server.adminPort): the address is in use\n`)
  const levels = admin.stdout.split('\n').filter(Boolean).map((line) => (JSON.parse(line) as { level: number, msg: string }))
  t.same(levels.filter((l) => l.level >= 40), [], `no warning or error logged after the main port listened: ${admin.stdout}`)
})

t.test('the production gateway loads none of the emulator, @peculiar/x509, tsyringe or reflect-metadata', async (t) => {
  const script = resolve(__dirname, '../helpers/loaded-modules.ts')
  for (const args of [['app'], ['gateway', gatewayConfig('lean.yaml', '{ host: 127.0.0.1, port: 0 }')]]) {
    const res = run(args, script)
    t.equal(res.status, 0, `${args[0]!}: ${res.stderr}`)
    const loaded = JSON.parse(res.stdout.trim().split('\n').at(-1) ?? '{}') as { total: number, emulator: string[], reflectPatched: boolean }
    t.ok(loaded.total > 100, `${args[0]!}: modules were counted (${loaded.total})`)
    t.same(loaded.emulator, [], `${args[0]!}: no emulator module`)
    t.equal(loaded.reflectPatched, false, `${args[0]!}: Reflect is not patched`)
  }
})
