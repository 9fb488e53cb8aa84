import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parse } from 'yaml'
import { buildGateway } from '../../src/app'
import { resolveConfig } from '../../src/config/load'
import type { GatewayConfig } from '../../src/config/types'
import { devGatewayIdentity } from '../../src/dev/dev-identity'
import { buildSampleApi } from '../../src/dev/sample-api'
import { DEV_IDS, startEmulator } from '../../src/emulator'

const ROOT = resolve(__dirname, '../..')
const CLI_COMMANDS = new Set(['emulator', 'sample-api', 'check-config'])

interface Service {
  build?: string | { context: string, dockerfile?: string }
  healthcheck?: { test?: string[], disable?: boolean }
  image?: string
  command?: string[]
  ports?: string[]
  depends_on?: Record<string, unknown> | string[]
  configs?: Array<{ source: string }>
  volumes?: string[]
  environment?: Record<string, string>
}

const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')
const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, Service>
  configs?: Record<string, { content?: string }>
  volumes?: Record<string, unknown>
}

t.test('every service builds from something that exists and runs a command the image has', async (t) => {
  for (const [name, service] of Object.entries(compose.services)) {
    if (service.image !== undefined) continue
    const build = typeof service.build === 'string' ? { context: service.build } : service.build
    t.ok(build, `${name}: build or image`)
    t.ok(existsSync(join(ROOT, build!.context, build!.dockerfile ?? 'Dockerfile')), `${name}: Dockerfile exists`)
    if (service.command !== undefined) t.ok(CLI_COMMANDS.has(service.command[0]!), `${name}: obo-gateway ${service.command[0]} is a real command`)
  }
  const copied = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(' '))
  t.ok(copied.includes('src') && copied.includes('package-lock.json'), 'the COPY lines were found')
  for (const path of copied) t.ok(existsSync(join(ROOT, path)), `Dockerfile copies ${path}, which exists`)
})

t.test('references between services, configs and volumes resolve; published ports do not clash', async (t) => {
  const published: string[] = []
  for (const [name, service] of Object.entries(compose.services)) {
    const deps = Array.isArray(service.depends_on) ? service.depends_on : Object.keys(service.depends_on ?? {})
    for (const dep of deps) t.ok(compose.services[dep], `${name} depends on ${dep}, which exists`)
    for (const config of service.configs ?? []) t.ok(compose.configs?.[config.source], `${name} uses config ${config.source}, which exists`)
    for (const volume of service.volumes ?? []) {
      const source = volume.split(':')[0]!
      if (!source.startsWith('.') && !source.startsWith('/')) t.ok(compose.volumes && source in compose.volumes, `${name} mounts volume ${source}, which is declared`)
    }
    for (const port of service.ports ?? []) published.push(port.split(':')[0]!)
  }
  t.same(published.length, new Set(published).size, `published ports are distinct: ${published.join(', ')}`)
  t.ok(Object.keys(compose.services).filter((n) => n.startsWith('gateway')).length >= 2, 'two gateway instances')
})

t.test('the gateway config in the compose file is valid', async (t) => {
  const content = compose.configs?.['gateway-config']?.content
  t.type(content, 'string')
  const dir = mkdtempSync(join(tmpdir(), 'obo-compose-'))
  writeFileSync(join(dir, 'ca.pem'), 'not read for validity here')
  const gateway = compose.services['gateway-1']!
  // Compose turns $$ into $; the CA lives in the emulator's volume, so point at a stand-in file.
  const raw = parse(content!.replace(/\$\$/g, '$').replace('/data/ca.pem', join(dir, 'ca.pem')))
  const config = resolveConfig(raw, { source: 'docker-compose.yml', env: gateway.environment ?? {} })
  t.equal(config.routes.length, 1)
  t.equal(config.tokenCache.redisUrl, 'redis://redis:6379')
})

/** The paths the Dockerfile copies from the build context. */
const copiedFromContext = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(' '))

/** Whether .dockerignore leaves `path` in the build context: the last matching pattern decides. */
function inContext (path: string): boolean {
  const rules = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))
  const ancestors = path.split('/').map((_, i, parts) => parts.slice(0, i + 1).join('/'))
  let kept = true
  for (const rule of rules) {
    const negated = rule.startsWith('!')
    const pattern = new RegExp(`^${(negated ? rule.slice(1) : rule).replace(/\/+$/, '').replace(/[.+^$()|[\]{}]/g, '\\$&').replace(/\*\*/g, '.*').replace(/(?<!\.)\*/g, '[^/]*')}$`)
    if (ancestors.some((a) => pattern.test(a))) kept = negated
  }
  return kept
}

t.test('.dockerignore keeps what the Dockerfile copies and leaves the rest out', async (t) => {
  t.ok(existsSync(join(ROOT, '.dockerignore')))
  for (const path of copiedFromContext) {
    t.ok(inContext(path), `${path} is in the build context`)
    if (path === 'src') t.ok(inContext('src/emulator/start.ts'), 'with what is below it')
  }
  for (const path of ['node_modules', 'node_modules/fastify/package.json', 'dist', '.git', '.tap', 'test', 'bench', 'deploy', 'docker-compose.yml', '.env']) {
    t.notOk(inContext(path), `${path} is left out`)
  }
  for (const entry of readdirSync(ROOT)) {
    if (!copiedFromContext.includes(entry)) t.notOk(inContext(entry), `${entry}: not copied, so not sent`)
  }
})

/** The image's HEALTHCHECK command (exec form) and the ENV defaults it reads. */
const imageHealthcheck = JSON.parse(/^HEALTHCHECK .*\\\n\s+CMD (\[.+\])$/m.exec(dockerfile)?.[1] ?? 'null') as string[] | null
const imageEnv = Object.fromEntries([...dockerfile.matchAll(/^ENV (\w+)=(\S+)$/gm)].map((m) => [m[1]!, m[2]!]))
const option = (service: Service, name: string): string | undefined => {
  const i = service.command?.indexOf(name) ?? -1
  return i < 0 ? undefined : service.command![i + 1]
}
const gatewayConfig = (service: Service): GatewayConfig => {
  const content = compose.configs?.[service.configs![0]!.source]?.content ?? ''
  return resolveConfig(parse(content.replace(/\$\$/g, '$').replace('tls: { caFile: /data/ca.pem }', '')), { source: 'docker-compose.yml', env: service.environment ?? {} })
}

t.test('each role\'s health check probes the port that role listens on', async (t) => {
  t.ok(imageHealthcheck, 'the Dockerfile has one exec-form HEALTHCHECK')
  t.match(imageHealthcheck!.join(' '), /process\.env\.OBO_GATEWAY_HEALTH_PORT/, 'the image\'s check reads its port from OBO_GATEWAY_HEALTH_PORT')
  t.equal(imageEnv.OBO_GATEWAY_HEALTH_PORT, '8080', 'which defaults to the gateway\'s default port')
  for (const [name, service] of Object.entries(compose.services)) {
    t.not(service.healthcheck?.disable, true, `${name}: health check on`)
    if (service.image !== undefined) {
      t.ok(service.healthcheck?.test, `${name}: its own health check`)
      continue
    }
    const role = service.command?.[0] ?? 'gateway'
    const own = service.healthcheck?.test
    if (role === 'gateway') {
      t.equal(own, undefined, `${name}: the image's health check`)
      const { port, adminPort } = gatewayConfig(service).server
      const probed = Number(service.environment?.OBO_GATEWAY_HEALTH_PORT ?? imageEnv.OBO_GATEWAY_HEALTH_PORT)
      t.equal(probed, adminPort ?? port, `${name}: probes ${probed}, where its config serves /healthz`)
    } else {
      t.ok(own, `${name}: a health check of its own (the image's asks the gateway's /healthz)`)
      t.match(own!.join(' '), new RegExp(`//(127\\.0\\.0\\.1|localhost):${option(service, '--port')}/`), `${name}: probes its --port ${option(service, '--port')}`)
    }
  }
  t.match(compose.services.emulator!.healthcheck!.test!.join(' '), /https:\/\/localhost:8443\/.*readFileSync\('\/data\/ca\.pem'\)/, 'the emulator is asked over HTTPS, trusting its own CA')
})

/** Runs an exec-form health check (compose's `["CMD", ...]` or the Dockerfile's `[...]`) as Docker does; answers its exit code. */
async function runCheck (command: string[], env: Record<string, string> = {}): Promise<number | null> {
  const [file, ...args] = command[0] === 'CMD' ? command.slice(1) : command
  const child = spawn(file!, args, { env: { ...process.env, ...env }, stdio: 'ignore', timeout: 10_000 })
  return await new Promise((resolve, reject) => child.once('exit', resolve).once('error', reject))
}

t.test('the health checks, run against the real servers, say healthy only when they serve', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'obo-healthcheck-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })

  // The emulator on a second `up`: its CA is in the volume from the first, and it does not listen yet.
  const first = await startEmulator({ host: '127.0.0.1', port: 0, dataDir: dir })
  const port = first.port
  await first.close()
  t.ok(existsSync(join(dir, 'ca.pem')), 'the CA is left from the first run')
  const emulatorCheck = compose.services.emulator!.healthcheck!.test!.map((arg) => arg.replace(':8443/', `:${port}/`).replace('/data/ca.pem', join(dir, 'ca.pem')))
  t.equal(await runCheck(emulatorCheck), 1, 'emulator: not healthy before it listens, CA file or not')
  const emulator = await startEmulator({ host: '127.0.0.1', port, dataDir: dir })
  t.teardown(() => emulator.close())
  t.equal(await runCheck(emulatorCheck), 0, 'emulator: healthy once it answers')

  const sampleApi = await buildSampleApi({ instance: emulator.url, tenantId: DEV_IDS.tenantId, clientId: DEV_IDS.sampleApi.clientId, identifierUri: DEV_IDS.sampleApi.identifierUri, ca: [emulator.caPem] })
  t.teardown(() => sampleApi.close())
  await sampleApi.listen({ host: '127.0.0.1', port: 0 })
  const sampleCheck = compose.services['sample-api']!.healthcheck!.test!.map((arg) => arg.replace(':8081/', `:${(sampleApi.server.address() as { port: number }).port}/`))
  t.equal(await runCheck(sampleCheck), 0, 'sample API: healthy while it listens')
  await sampleApi.close()
  t.equal(await runCheck(sampleCheck), 1, 'sample API: not once it stopped')

  // A gateway with an admin port: /healthz is there, not on the public port.
  const gateway = await buildGateway(resolveConfig({
    server: { host: '127.0.0.1', port: 0, adminPort: 0 },
    identity: devGatewayIdentity(emulator),
    routes: [{ prefix: '/api', upstream: 'http://127.0.0.1:9', user: { requireScopes: ['access_as_user'], scopes: [`${DEV_IDS.sampleApi.identifierUri}/Items.Read`] } }]
  }, { source: 'test' }))
  t.teardown(() => gateway.close())
  await gateway.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => gateway.adminApp?.close())
  await gateway.adminApp!.listen({ host: '127.0.0.1', port: 0 })
  const publicPort = String((gateway.server.address() as { port: number }).port)
  const adminPort = String((gateway.adminApp!.server.address() as { port: number }).port)
  t.equal(await runCheck(imageHealthcheck!, { OBO_GATEWAY_HEALTH_PORT: adminPort }), 0, 'gateway: healthy on the admin port OBO_GATEWAY_HEALTH_PORT names')
  t.equal(await runCheck(imageHealthcheck!, { OBO_GATEWAY_HEALTH_PORT: publicPort }), 1, 'gateway: the public port has no /healthz when adminPort is set')
})
