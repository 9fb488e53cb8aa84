import { execFile } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'

/**
 * The package as a user gets it: `npm pack`ed, installed into a project of its own, used from
 * CommonJS and from ES modules, and type-checked in both kinds of TypeScript project.
 *
 * The tarball is built from a staging copy (package.json + a fresh `tsc` build), so other test files
 * that run dist/ meanwhile never see it half-written. It is installed by unpacking it where npm
 * would, next to links to the repository's copies of the packages its package.json `dependencies`
 * name, and nothing else: a module the package needs but does not declare fails to load here, as it
 * would for a user, without a registry download per run.
 */
const run = promisify(execFile)
const ROOT = resolve(__dirname, '../..')
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc')

interface PackageJson { name: string, dependencies: Record<string, string> }

async function node (cwd: string, args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, args, { cwd, timeout: 60_000, env: { ...process.env, NODE_OPTIONS: '' } })
  return stdout
}

async function typecheck (project: string): Promise<{ ok: boolean, output: string }> {
  try {
    await run(process.execPath, [TSC, '--noEmit', '-p', project], { timeout: 240_000 })
    return { ok: true, output: '' }
  } catch (err) {
    const { stdout, stderr, message } = err as { stdout?: string, stderr?: string, message: string }
    return { ok: false, output: `${stdout ?? ''}${stderr ?? ''}` || message }
  }
}

function write (path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true })
  writeFileSync(path, text)
}

// Packing, building and three type checks: minutes on a busy machine, not the suite's two.
t.setTimeout(600_000)

t.test('the packed package works from CommonJS and ES modules, in JavaScript and TypeScript', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'obo-package-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })

  const staging = join(dir, 'staging')
  mkdirSync(staging)
  cpSync(join(ROOT, 'package.json'), join(staging, 'package.json'))
  cpSync(join(ROOT, 'README.md'), join(staging, 'README.md'))
  await run(process.execPath, [TSC, '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', join(staging, 'dist')], { timeout: 240_000 })
  const { stdout: packed } = await run('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', dir], { cwd: staging, timeout: 120_000 })
  const tarball = join(dir, packed.trim().split('\n').at(-1) ?? '')

  const modules = join(dir, 'project', 'node_modules')
  const installed = join(modules, 'obo-gateway')
  mkdirSync(installed, { recursive: true })
  await run('tar', ['-xzf', tarball, '-C', installed, '--strip-components=1'])
  const manifest = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as PackageJson
  // What the consumer installs for itself: TypeScript's Node types.
  for (const name of [...Object.keys(manifest.dependencies), '@types/node']) {
    mkdirSync(dirname(join(modules, name)), { recursive: true })
    symlinkSync(join(ROOT, 'node_modules', name), join(modules, name), 'dir')
  }
  t.ok(readdirSync(join(installed, 'dist/src/emulator')).includes('index.d.ts'), 'the tarball holds the emulator entry point and its types')

  const cjs = join(dir, 'project', 'cjs')
  const esm = join(dir, 'project', 'esm')
  write(join(cjs, 'package.json'), JSON.stringify({ name: 'cjs-consumer', private: true }))
  write(join(esm, 'package.json'), JSON.stringify({ name: 'esm-consumer', private: true, type: 'module' }))

  await t.test('require(\'obo-gateway/emulator\') starts an emulator that serves metadata, without loading the gateway', async (t) => {
    write(join(cjs, 'start.cjs'), `
const https = require('node:https')
const { startEmulator, DEV_IDS } = require('obo-gateway/emulator')
const get = (url, ca) => new Promise((resolve, reject) => https.get(url, { ca }, (res) => {
  let body = ''
  res.on('data', (c) => { body += c }).on('end', () => resolve(JSON.parse(body)))
}).on('error', reject))
startEmulator().then(async (emulator) => {
  const gatewayModules = Object.keys(require.cache).filter((f) => /obo-gateway[\\\\/]dist[\\\\/]/.test(f) && !/[\\\\/]dist[\\\\/]src[\\\\/](emulator|net)[\\\\/]/.test(f))
  const entraAuth = require('obo-gateway/entra-auth')
  const metadata = await get(emulator.url + '/' + DEV_IDS.tenantId + '/v2.0/.well-known/openid-configuration', emulator.caPem)
  await emulator.close()
  console.log(JSON.stringify({ issuer: metadata.issuer, url: emulator.url, gatewayModules, entraAuth: typeof entraAuth.default, failures: typeof emulator.failures.inject }))
})
`)
    const out = JSON.parse(await node(cjs, ['start.cjs'])) as Record<string, unknown>
    t.equal(out.issuer, `${String(out.url)}/7d3c1b52-6e5c-4a1f-9c0e-2f4b8a6d9e10/v2.0`, 'the emulator answered over TLS with its CA')
    t.same(out.gatewayModules, [], 'loading the emulator loaded no gateway module')
    t.equal(out.entraAuth, 'function', 'require(\'obo-gateway/entra-auth\').default is the plugin')
    t.equal(out.failures, 'function', 'the grouped handle')
  })

  await t.test('import from \'obo-gateway/emulator\' and the plugins in an ES module', async (t) => {
    write(join(esm, 'start.mjs'), `
import Fastify from 'fastify'
import { startEmulator, DEV_IDS } from 'obo-gateway/emulator'
import entraAuth, { assertionOf } from 'obo-gateway/entra-auth'
import errorResponses from 'obo-gateway/error-responses'
const emulator = await startEmulator()
const identity = { instance: emulator.url, tenantId: DEV_IDS.tenantId, clientId: DEV_IDS.sampleApi.clientId }
const app = Fastify()
await app.register(errorResponses, identity)
await app.register(entraAuth, { ...identity, audiences: [identity.clientId], ca: [emulator.caPem] })
app.get('/items', { preHandler: app.entraRequire({ user: { requireScopes: ['Items.Read'] } }) }, async () => ({}))
const res = await app.inject({ url: '/items' })
await app.close()
await emulator.close()
console.log(JSON.stringify({ status: res.statusCode, challenge: res.headers['www-authenticate'], assertionOf: typeof assertionOf, seeded: emulator.seed.tenants.length }))
`)
    const out = JSON.parse(await node(esm, ['start.mjs'])) as Record<string, unknown>
    t.equal(out.status, 401, 'entra-auth and error-responses registered from ESM answer a request without a token')
    t.match(out.challenge, /^Bearer realm=""/)
    t.equal(out.assertionOf, 'function', 'named exports come through')
    t.equal(out.seeded, 1)
  })

  await t.test('tsc --noEmit passes in an ESM (nodenext) and in CommonJS projects', async (t) => {
    const program = (esModule: boolean): string => `
import Fastify from 'fastify'
import entraAuth, { type EntraAuthOptions } from 'obo-gateway/entra-auth'
import errorResponses from 'obo-gateway/error-responses'
import { startEmulator, DEV_IDS, type FailureHandle, type RunningEmulator } from 'obo-gateway/emulator'
import type { buildGateway } from 'obo-gateway'

export type Build = typeof buildGateway

${esModule ? '' : 'export '}async function main (): Promise<void> {
  const emulator: RunningEmulator = await startEmulator()
  const identity = { instance: emulator.url, tenantId: DEV_IDS.tenantId, clientId: DEV_IDS.sampleApi.clientId }
  const app = Fastify()
  await app.register(errorResponses, identity)
  const options: EntraAuthOptions = { ...identity, audiences: [identity.clientId], ca: [emulator.caPem] }
  await app.register(entraAuth, options)
  app.get('/items', { preHandler: app.entraRequire({ user: { requireScopes: ['Items.Read'] } }) }, async (request) => ({ owner: request.principal?.objectId }))
  const failure: FailureHandle = emulator.failures.inject({ grant: 'obo', kind: 'throttled', times: 1 })
  failure.remove()
  const kid: string = await emulator.keys.publish(DEV_IDS.tenantId)
  emulator.keys.retire(DEV_IDS.tenantId, kid)
  await app.close()
  await emulator.close()
}
${esModule ? 'await main()' : ''}
`
    // The shipped declarations themselves are checked once (skipLibCheck off), in the ESM project.
    const compilerOptions = { target: 'ES2022', strict: true, noEmit: true, types: ['node'], skipLibCheck: true }
    write(join(esm, 'index.ts'), program(true))
    write(join(esm, 'tsconfig.json'), JSON.stringify({ compilerOptions: { ...compilerOptions, skipLibCheck: false, module: 'nodenext', moduleResolution: 'nodenext' }, files: ['index.ts'] }))
    write(join(cjs, 'index.ts'), program(false))
    write(join(cjs, 'tsconfig.json'), JSON.stringify({ compilerOptions: { ...compilerOptions, module: 'nodenext', moduleResolution: 'nodenext', esModuleInterop: true }, files: ['index.ts'] }))
    write(join(cjs, 'tsconfig.node10.json'), JSON.stringify({ compilerOptions: { ...compilerOptions, module: 'commonjs', moduleResolution: 'node10', esModuleInterop: true }, files: ['index.ts'] }))
    const [esmResult, cjsResult, node10Result] = await Promise.all([
      typecheck(esm),
      typecheck(cjs),
      typecheck(join(cjs, 'tsconfig.node10.json'))
    ])
    t.ok(esmResult.ok, 'ESM project (type: module, nodenext)', { output: esmResult.output })
    t.ok(cjsResult.ok, 'CommonJS project (nodenext)', { output: cjsResult.output })
    t.ok(node10Result.ok, 'CommonJS project (module commonjs, moduleResolution node10)', { output: node10Result.output })
  })
})
