import t from 'tap'
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parse } from 'yaml'
import { resolveConfig } from '../../src/config/load'

const ROOT = resolve(__dirname, '../..')
const CLI_COMMANDS = new Set(['emulator', 'sample-api', 'check-config'])

interface Service {
  build?: string | { context: string, dockerfile?: string }
  image?: string
  command?: string[]
  ports?: string[]
  depends_on?: Record<string, unknown> | string[]
  configs?: Array<{ source: string }>
  volumes?: string[]
  environment?: Record<string, string>
}

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
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')
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
