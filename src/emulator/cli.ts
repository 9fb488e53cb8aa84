import { once } from 'node:events'
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { listenOrExplain, StartError } from '../net/listen'
import { startEmulator, type EmulatorOptions, type RunningEmulator } from './start'
import { loadSeedFile, SeedError } from './seed'

/** Inside the git-ignored .obo-gateway/ so the CA, once trusted, survives restarts. */
const DEFAULT_DATA_DIR = '.obo-gateway/emulator'

const USAGE = `usage: obo-gateway emulator [options]
  runs the Entra ID emulator alone, until SIGINT or SIGTERM
  --host H           listen address (default 127.0.0.1)
  --port N           listen port (default 0: any free port)
  --seed FILE        tenants, applications and users, .json or .yaml (default: the built-in dev seed)
  --data-dir DIR     where the CA certificate and key are kept across restarts (default ${DEFAULT_DATA_DIR})
  --public-url URL   the https origin clients use when it is not the listen address,
                     e.g. https://emulator:8443 in docker compose
  --no-control-api   no control API under /_emulator/ (it answers 404 there)
  -h, --help         this text`

class UsageError extends Error {}

/**
 * `obo-gateway emulator`: runs until SIGINT/SIGTERM. Mistakes end in one line on stderr and
 * exit code 1, never a stack trace.
 */
export async function runEmulatorCommand (argv: string[]): Promise<void> {
  if (argv.some((arg) => arg === '--help' || arg === '-h')) {
    process.stdout.write(`${USAGE}\n`)
    return
  }
  let emulator: RunningEmulator
  try {
    const options = await optionsFrom(argv)
    emulator = await listenOrExplain(async () => await startEmulator(options), `${options.host ?? '127.0.0.1'}:${options.port ?? 0}`)
  } catch (err) {
    const reason = err instanceof UsageError ? `${err.message}\n${USAGE}` : err instanceof SeedError || err instanceof StartError ? err.message : `cannot start: ${(err as Error).message}`
    process.stderr.write(`obo-gateway emulator: ${reason}\n`)
    process.exitCode = 1
    return
  }
  process.stdout.write(describe(emulator))
  const signal = await Promise.race([once(process, 'SIGINT'), once(process, 'SIGTERM')])
  process.stdout.write(`obo-gateway emulator: ${String(signal[0] ?? 'signal')} received, stopping\n`)
  await emulator.close()
}

async function optionsFrom (argv: string[]): Promise<EmulatorOptions> {
  let values: { host?: string, port?: string, seed?: string, 'data-dir'?: string, 'public-url'?: string, 'no-control-api'?: boolean }
  try {
    values = parseArgs({
      args: argv,
      options: { host: { type: 'string' }, port: { type: 'string' }, seed: { type: 'string' }, 'data-dir': { type: 'string' }, 'public-url': { type: 'string' }, 'no-control-api': { type: 'boolean' } },
      strict: true,
      allowPositionals: false
    }).values
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
  const options: EmulatorOptions = { dataDir: resolve(values['data-dir'] ?? DEFAULT_DATA_DIR) }
  if (values.host !== undefined) options.host = values.host
  if (values.port !== undefined) {
    const port = Number(values.port)
    if (!/^\d+$/.test(values.port) || port > 65535) throw new UsageError(`--port must be a number from 0 to 65535, got '${values.port}'`)
    options.port = port
  }
  if (values['public-url'] !== undefined) {
    if (!/^https:\/\/[^/\s]+\/?$/.test(values['public-url'])) throw new UsageError(`--public-url must be an https origin such as https://emulator:8443, got '${values['public-url']}'`)
    options.publicUrl = values['public-url']
  }
  if (values['no-control-api'] === true) options.controlApi = false
  if (values.seed !== undefined) options.seed = await loadSeedFile(values.seed)
  return options
}

/** What a developer needs to point clients at it; passwords and secrets stay in the seed file. */
function describe (emulator: RunningEmulator): string {
  const lines = [
    `Entra ID emulator listening on ${emulator.url}`,
    `CA certificate: ${emulator.caFile} (trust it, e.g. NODE_EXTRA_CA_CERTS=${emulator.caFile})`,
    `msal-node: authority ${emulator.url}/<tenant id or name>, knownAuthorities ['${emulator.host}']`,
    `@azure/identity: authorityHost ${emulator.url} with disableInstanceDiscovery: true (else it asks login.microsoftonline.com about the authority)`,
    emulator.controlApi ? `control API: GET ${emulator.url}/_emulator/ lists the calls` : 'control API: off (--no-control-api)'
  ]
  for (const tenant of emulator.seed.tenants) {
    lines.push(`tenant ${tenant.name} ${tenant.id}`)
    for (const app of tenant.applications) {
      const kind = app.publicClient === true
        ? 'public client'
        : (app.secrets ?? []).length > 0 ? 'confidential (secret)' : (app.redirectUris?.spa ?? []).length > 0 ? 'single-page app (spa)' : 'resource only'
      const scopes = [...(app.scopes ?? []), ...(app.oauth2PermissionScopes ?? []).map((s) => `${s.value}${s.type === 'Admin' ? ' (admin)' : ''}`)]
      const exposes = [...(app.identifierUris ?? []), ...scopes.map((s) => `scope ${s}`), ...(app.appRoles ?? []).map((r) => `role ${r}`)]
      lines.push(`  app  ${app.displayName} ${app.clientId} ${kind}${exposes.length > 0 ? `: ${exposes.join(', ')}` : ''}`)
    }
    for (const user of tenant.users ?? []) lines.push(`  user ${user.username} ${user.objectId} (${user.name})`)
  }
  return `${lines.join('\n')}\n`
}
