#!/usr/bin/env node
import { parseArgs } from 'node:util'
import closeWithGrace from 'close-with-grace'
import { buildGateway, LOG_REDACTIONS } from './app'
import { ConfigError, loadConfigFile } from './config/load'
import { readFileSync } from 'node:fs'
import { buildSampleApi } from './dev/sample-api'
import { devStackBanner, startDevStack } from './dev/stack'
import { DEV_IDS, runEmulatorCommand } from './emulator'

const USAGE = `usage:
  obo-gateway [--config FILE]        run the gateway with FILE (or $OBO_GATEWAY_CONFIG);
                                     with neither, run the local dev stack (emulator + sample API + gateway)
  obo-gateway check-config FILE      validate FILE and exit
  obo-gateway emulator [--host H] [--port N] [--seed FILE] [--data-dir DIR]
                                     run only the Entra ID emulator
  obo-gateway sample-api --instance URL [--ca-file FILE] [--host H] [--port N]
                                     run only the sample downstream API (dev seed identities)`

const LOGGER = {
  level: process.env.LOG_LEVEL ?? 'info',
  redact: LOG_REDACTIONS
}

export async function main (argv: string[]): Promise<void> {
  const [command, ...rest] = argv
  if (command === 'emulator') return await runEmulatorCommand(rest)
  if (command === 'check-config') return checkConfig(rest)
  if (command === 'sample-api') return await runSampleApi(rest)
  if (command === '--help' || command === '-h' || command === 'help') {
    console.log(USAGE)
    return
  }
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' } }, strict: true })
  const file = values.config ?? process.env.OBO_GATEWAY_CONFIG
  if (file === undefined || file === '') return await runDevStack()
  return await runGateway(file)
}

function checkConfig (args: string[]): void {
  if (args.length !== 1 || args[0] === undefined) throw new UsageError('check-config takes exactly one FILE')
  const config = loadConfigFile(args[0])
  console.log(`${args[0]}: valid (${config.routes.length} route${config.routes.length === 1 ? '' : 's'}, tenant ${config.identity.tenantId}, instance ${config.identity.instance})`)
}

/** How long in-flight requests get to finish after SIGTERM before the process exits anyway. */
const SHUTDOWN_GRACE_MS = 10_000

async function runGateway (file: string): Promise<void> {
  const config = loadConfigFile(file)
  const app = await buildGateway(config, { logger: LOGGER })
  // Stop accepting, let in-flight requests finish, then close Redis and the connection pools.
  closeWithGrace({ delay: SHUTDOWN_GRACE_MS, logger: app.log }, async ({ signal, err }) => {
    if (err) app.log.error({ err }, 'shutting down after an error')
    else app.log.info({ signal }, 'shutting down: finishing in-flight requests')
    await app.close()
  })
  const { host, port, adminPort } = config.server
  await listenOrExplain(() => app.listen({ host, port }), `${host}:${port}`)
  if (app.adminApp !== null && adminPort !== undefined) {
    await listenOrExplain(() => app.adminApp!.listen({ host, port: adminPort }), `${host}:${adminPort} (server.adminPort)`)
  }
}

async function runDevStack (): Promise<void> {
  const stack = await listenOrExplain(() => startDevStack({ logger: { level: process.env.LOG_LEVEL ?? 'warn' } }), 'the dev stack ports (8443, 8081, 8083, 8080)')
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
  const app = await buildSampleApi({
    instance: values.instance.replace(/\/+$/, ''),
    tenantId: DEV_IDS.tenantId,
    clientId: DEV_IDS.sampleApi.clientId,
    identifierUri: DEV_IDS.sampleApi.identifierUri,
    ...(values['ca-file'] !== undefined ? { ca: [readFileSync(values['ca-file'], 'utf8')] } : {})
  })
  closeWithGrace({ delay: 5_000 }, async () => { await app.close() })
  const url = await listenOrExplain(() => app.listen({ host: values.host ?? '127.0.0.1', port }), `port ${port}`)
  console.log(`sample API listening on ${url}, accepting tokens for ${DEV_IDS.sampleApi.identifierUri}`)
}

async function listenOrExplain<T> (start: () => Promise<T>, where: string): Promise<T> {
  try {
    return await start()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new UsageError(`cannot listen on ${where}: the address is in use`)
    throw err
  }
}

class UsageError extends Error {}

/** Expected failures print one line (or the config's list of issues) and exit 1; never a stack trace. */
export function explain (err: unknown): string {
  if (err instanceof ConfigError || err instanceof UsageError) return err.message
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
