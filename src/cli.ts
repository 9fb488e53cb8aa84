#!/usr/bin/env node
import cluster from 'node:cluster'
import { existsSync, readFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { dirname, join } from 'node:path'
import { parseArgs } from 'node:util'
import closeWithGrace from 'close-with-grace'
import type { FastifyInstance } from 'fastify'
import { buildGateway, LOG_REDACTIONS } from './app'
import { credentialFileProblems } from './config/credential-files'
import { ConfigError, configFromText, loadConfigFile, readConfigFile } from './config/load'
import type { GatewayConfig } from './config/types'
import { listenOrExplain, StartError } from './net/listen'
import { runPrimary } from './server/primary'
import { closeOnSignal } from './server/shutdown'
import { runWorker } from './server/worker'
import { WORKER_SLOT_ENV } from './server/worker-messages'

// The emulator and the dev stack are imported only by their own commands: the production gateway
// never loads them (nor @peculiar/x509, tsyringe and reflect-metadata, which patches Reflect).

const USAGE = `usage:
  obo-gateway [--config FILE]        run the gateway with FILE (or $OBO_GATEWAY_CONFIG);
                                     with neither, run the local dev stack (emulator + sample API + gateway)
  obo-gateway check-config FILE      validate FILE (and that its credential files can be read, and a certificate
                                     passes the check the gateway runs at start), then exit
  obo-gateway emulator [--host H] [--port N] [--seed FILE] [--data-dir DIR] [--public-url URL] [--no-control-api]
                                     run only the Entra ID emulator (obo-gateway emulator --help)
  obo-gateway sample-api --instance URL [--ca-file FILE] [--host H] [--port N]
                                     run only the sample downstream API (dev seed identities)
  obo-gateway --version              print the version
  obo-gateway --help                 print this`

const LOGGER = {
  level: process.env.LOG_LEVEL ?? 'info',
  redact: LOG_REDACTIONS
}

export async function main (argv: string[]): Promise<void> {
  const [command, ...rest] = argv
  if (command === 'emulator') return await (await import('./emulator/index.js')).runEmulatorCommand(rest)
  if (command === '--help' || command === '-h' || command === 'help' || (isHelp(rest) && (command === 'check-config' || command === 'sample-api'))) {
    console.log(USAGE)
    return
  }
  if (command === '--version' || command === '-v') {
    console.log(packageVersion())
    return
  }
  if (command === 'check-config') return checkConfig(rest)
  if (command === 'sample-api') return await runSampleApi(rest)
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' } }, strict: true })
  const file = values.config ?? process.env.OBO_GATEWAY_CONFIG
  if (file === undefined || file === '') return await runDevStack()
  return await runGateway(file)
}

function checkConfig (args: string[]): void {
  if (args.length !== 1 || args[0] === undefined) throw new UsageError('check-config takes exactly one FILE')
  const config = loadConfigFile(args[0])
  const problems = credentialFileProblems(config.identity.credential)
  if (problems.length > 0) throw new ConfigError(args[0], problems)
  console.log(`${args[0]}: valid (${config.routes.length} route${config.routes.length === 1 ? '' : 's'}, tenant ${config.identity.tenantId}, instance ${config.identity.instance})`)
}

/** How long in-flight requests get to finish after SIGTERM before the process exits anyway. */
const SHUTDOWN_GRACE_MS = 10_000

async function runGateway (file: string): Promise<void> {
  if (cluster.isWorker) {
    return await runWorker({ start: (config) => startGateway(config, { admin: false }), explain, graceMs: SHUTDOWN_GRACE_MS })
  }
  const configText = readConfigFile(file)
  const config = configFromText(configText, file)
  if (config.server.workers > 1) {
    return await runPrimary({ config, configText, source: file, logger: LOGGER, graceMs: SHUTDOWN_GRACE_MS })
  }
  closeOnSignal(await startGateway(config, { admin: true }), SHUTDOWN_GRACE_MS)
}

/** The gateway listening on server.port, and on server.adminPort when `admin` (a worker leaves that to the primary). */
async function startGateway (config: GatewayConfig, { admin }: { admin: boolean }): Promise<FastifyInstance> {
  const slot = process.env[WORKER_SLOT_ENV]
  const logger = cluster.isWorker && slot !== undefined ? { ...LOGGER, base: { pid: process.pid, hostname: hostname(), worker: Number(slot) } } : LOGGER
  const app = await buildGateway(config, { logger })
  const { host, port, adminPort } = config.server
  try {
    await listenOrExplain(() => app.listen({ host, port }), `${host}:${port}`)
    // A gateway without its health endpoints would look dead to its orchestrator: stop instead.
    if (admin && app.adminApp !== null && adminPort !== undefined) {
      await listenOrExplain(() => app.adminApp!.listen({ host, port: adminPort }), `${host}:${adminPort} (server.adminPort)`)
    }
  } catch (err) {
    await app.close()
    throw err
  }
  return app
}

async function runDevStack (): Promise<void> {
  const { devStackBanner, startDevStack } = await import('./dev/stack.js')
  // A port in use is a StartError naming it.
  const stack = await startDevStack({ logger: { level: process.env.LOG_LEVEL ?? 'warn' } })
  closeWithGrace({ delay: 5_000 }, async () => { await stack.close() })
  console.log(devStackBanner(stack))
}

async function runSampleApi (args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { instance: { type: 'string' }, 'ca-file': { type: 'string' }, host: { type: 'string' }, port: { type: 'string' } },
    strict: true
  })
  if (values.instance === undefined) throw new UsageError('sample-api needs --instance URL (the emulator\'s URL)')
  const port = Number(values.port ?? 8081)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port must be a number from 0 to 65535, got '${values.port ?? ''}'`)
  const [{ buildSampleApi }, { DEV_IDS }] = await Promise.all([import('./dev/sample-api.js'), import('./emulator/default-seed.js')])
  const app = await buildSampleApi({
    instance: values.instance.replace(/\/+$/, ''),
    tenantId: DEV_IDS.tenantId,
    clientId: DEV_IDS.sampleApi.clientId,
    identifierUri: DEV_IDS.sampleApi.identifierUri,
    ...(values['ca-file'] !== undefined ? { ca: [readFileSync(values['ca-file'], 'utf8')] } : {})
  })
  const host = values.host ?? '127.0.0.1'
  let url: string
  try {
    url = await listenOrExplain(() => app.listen({ host, port }), `${host}:${port}`)
  } catch (err) {
    await app.close()
    throw err
  }
  closeWithGrace({ delay: 5_000 }, async () => { await app.close() })
  console.log(`sample API listening on ${url}, accepting tokens for ${DEV_IDS.sampleApi.identifierUri}`)
}

function isHelp (args: string[]): boolean {
  return args.includes('--help') || args.includes('-h')
}

/** From the package.json above this file, in src/ (tsx) and in dist/src/ alike. */
function packageVersion (): string {
  for (let dir = __dirname; dir !== dirname(dir); dir = dirname(dir)) {
    const file = join(dir, 'package.json')
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string, version?: string }
      if (pkg.name === 'obo-gateway') return `obo-gateway ${pkg.version ?? 'unknown'}`
    }
  }
  return 'obo-gateway (version unknown)'
}

class UsageError extends Error {}

/** Expected failures print one line (or the config's list of issues) and exit 1; never a stack trace. */
export function explain (err: unknown): string {
  if (err instanceof ConfigError || err instanceof UsageError || err instanceof StartError) return err.message
  const code = (err as { code?: string }).code
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL' || code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    return `${(err as Error).message}\n${USAGE}`
  }
  return `failed to start: ${(err as Error).message ?? String(err)}`
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    console.error(`obo-gateway: ${explain(err)}`)
    process.exitCode = 1
  })
}
