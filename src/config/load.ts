import { readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { extname, resolve, dirname } from 'node:path'
import { Value, type ValueError } from '@sinclair/typebox/value'
import { ConfigSchema, type RawConfig } from './schema'
import type { GatewayConfig, GatewayCredential, RouteConfig } from './types'
import { parseRedisUrl } from '../redis/url'
import { DEFAULTS } from './defaults'
import { whyUnreadable } from './file-problems'
import { parseConfigText } from './parse-text'
import { shownValue } from './shown-value'
import { resolveTelemetry } from '../observability/tracing-config'
import { resolveMcpConfig } from '../mcp/config'

/** All that is wrong with a config, each issue naming the key path, so one run shows every mistake. */
export class ConfigError extends Error {
  override name = 'ConfigError'
  readonly code = 'OBO_CONFIG_INVALID'
  constructor (readonly source: string, readonly issues: string[]) {
    super(`invalid configuration in ${source}:\n${issues.map((i) => `  - ${i}`).join('\n')}`)
  }
}

const RESERVED_PATHS = ['/healthz', '/readyz', '/metrics']
const ENV_REF = /\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}/g

type Env = Record<string, string | undefined>

export function loadConfigFile (file: string, env: Env = process.env): GatewayConfig {
  return configFromText(readConfigFile(file), file, env)
}

/** The file's text as it stands now: worker processes get this text, so a file edited later cannot split them. */
export function readConfigFile (file: string): string {
  try {
    return readFileSync(resolve(file), 'utf8')
  } catch (err) {
    throw new ConfigError(file, [`the file ${whyUnreadable(err)}`])
  }
}

/** A config file's text, parsed as the file `file` (its extension, and the directory relative paths start from). */
export function configFromText (text: string, file: string, env: Env = process.env): GatewayConfig {
  const path = resolve(file)
  const parsed = parseConfigText(text, extname(path).toLowerCase() === '.json' ? 'JSON' : 'YAML')
  if ('problem' in parsed) throw new ConfigError(file, [parsed.problem])
  return resolveConfig(parsed.value, { source: file, baseDir: dirname(path), env })
}

export function resolveConfig (raw: unknown, options: { source: string, baseDir?: string, env?: Env }): GatewayConfig {
  const env = options.env ?? process.env
  const issues: string[] = []
  const fromEnv = new Map<string, string[]>()
  const substituted = substituteEnv(raw, env, '', issues, fromEnv)
  if (!isObject(substituted)) throw new ConfigError(options.source, ['the file must hold an object with identity and routes'])
  const credentialFromEnvironment = applyAzureEnvironment(substituted, env)

  const seen = new Set(issues.map((issue) => issue.slice(0, issue.indexOf(':'))))
  for (const error of Value.Errors(ConfigSchema, substituted)) {
    const path = keyPath(error)
    if (seen.has(path)) continue
    seen.add(path)
    issues.push(describe(error, path, fromEnv.get(path)))
  }
  // Not the schema's (the Azure variables may fill them), but checked on what is there even after
  // schema errors, so one run lists these too.
  for (const issue of identityGaps(substituted.identity)) {
    if (!seen.has(issue.slice(0, issue.indexOf(':')))) issues.push(issue)
  }
  if (issues.length > 0) throw new ConfigError(options.source, issues)

  const config = buildConfig(substituted as RawConfig, { baseDir: options.baseDir ?? process.cwd(), credentialFromEnvironment }, issues)
  const telemetry = resolveTelemetry((substituted as RawConfig).telemetry, env, issues)
  if (issues.length > 0 || config === undefined) throw new ConfigError(options.source, issues)
  return telemetry === undefined ? config : { ...config, telemetry }
}

/**
 * `baseDir`: where relative file paths start, the config file's directory, so a config means the
 * same files whatever directory the gateway starts in. AZURE_FEDERATED_TOKEN_FILE is not the file's
 * and stays as given (`credentialFromEnvironment`).
 */
function buildConfig (raw: RawConfig, { baseDir, credentialFromEnvironment }: { baseDir: string, credentialFromEnvironment: boolean }, issues: string[]): GatewayConfig | undefined {
  const identity = raw.identity
  const inBaseDir = (file: string): string => resolve(baseDir, file)
  // All three are there: identityGaps found none.
  const credential = pickCredential(identity.credential!, credentialFromEnvironment ? (file) => file : inBaseDir)
  const tenantId = identity.tenantId!
  const clientId = identity.clientId!

  let allowedTenants = identity.allowedTenants
  if (allowedTenants === undefined) {
    if (tenantId === 'organizations') issues.push('identity.allowedTenants: required when tenantId is organizations (the tenants whose users may call)')
    allowedTenants = [tenantId]
  }

  const readCa = (file: string, path: string): string[] => {
    try {
      return [readFileSync(inBaseDir(file), 'utf8')]
    } catch (err) {
      issues.push(`${path}: ${inBaseDir(file)} ${whyUnreadable(err)}`)
      return []
    }
  }
  const extraCaPems = identity.tls?.caFile === undefined ? [] : readCa(identity.tls.caFile, 'identity.tls.caFile')

  const routes: RouteConfig[] = []
  const prefixes = new Set<string>()
  raw.routes.forEach((route, i) => {
    if (prefixes.has(route.prefix)) issues.push(`routes.${i}.prefix: ${route.prefix} is used by an earlier route`)
    prefixes.add(route.prefix)
    if (raw.server?.adminPort === undefined && RESERVED_PATHS.some((p) => p === route.prefix || p.startsWith(`${route.prefix}/`))) {
      issues.push(`routes.${i}.prefix: ${route.prefix} would hide the gateway's own /healthz, /readyz or /metrics (or set server.adminPort)`)
    }
    if (route.user === undefined && route.app === undefined) {
      issues.push(`routes.${i}: needs a user block, an app block, or both (otherwise every caller is refused)`)
    }
    const mcp = route.mcp === undefined ? undefined : resolveMcpConfig(route, `routes.${i}`, issues)
    routes.push({
      prefix: route.prefix,
      innerPrefixes: raw.routes.map((other) => other.prefix).filter((other) => other.toLowerCase().startsWith(`${route.prefix.toLowerCase()}/`)),
      upstream: new URL(route.upstream),
      extraCaPems: route.tls === undefined ? [] : readCa(route.tls.caFile, `routes.${i}.tls.caFile`),
      ...(route.user ? { user: { ...route.user } } : {}),
      ...(route.app ? { app: { ...route.app } } : {}),
      ...(mcp ? { mcp } : {}),
      timeouts: { ...DEFAULTS.route.timeouts, ...route.timeouts },
      replayBodyLimitBytes: route.replayBodyLimitBytes ?? DEFAULTS.route.replayBodyLimitBytes
    })
  })

  if (raw.tokenCache?.redis !== undefined && raw.tokenCache.encryptionKey === undefined) {
    issues.push('tokenCache.encryptionKey: required with tokenCache.redis (tokens in Redis are always encrypted)')
  }
  if (raw.tokenCache?.redis !== undefined) {
    try {
      parseRedisUrl(raw.tokenCache.redis.url)
    } catch (err) {
      issues.push(`tokenCache.redis.url: ${(err as Error).message}`)
    }
  }

  const serverTimeouts = { ...DEFAULTS.server.timeouts, ...raw.server?.timeouts }
  if (serverTimeouts.headersMs > serverTimeouts.requestMs) {
    issues.push(`server.timeouts.headersMs: ${serverTimeouts.headersMs} is longer than requestMs (${serverTimeouts.requestMs}), which includes the headers`)
  }

  const port = raw.server?.port ?? DEFAULTS.server.port
  // Both listen on server.host: the same port would fail at start as "address in use", naming neither key.
  if (raw.server?.adminPort !== undefined && raw.server.adminPort !== 0 && raw.server.adminPort === port) {
    issues.push(`server.adminPort: ${port} is server.port too; /healthz, /readyz and /metrics need a port of their own (or leave adminPort out to serve them on server.port)`)
  }

  if (raw.server?.workers !== undefined && raw.server.workers !== 1 && raw.server.adminPort === undefined) {
    issues.push('server.adminPort: required when server.workers is not 1 (the primary process serves /healthz, /readyz and /metrics for all workers there)')
  }

  if (issues.length > 0) return undefined
  const server = raw.server ?? {}
  const tokenCache = raw.tokenCache ?? {}
  return {
    server: {
      host: server.host ?? DEFAULTS.server.host,
      port,
      ...(server.adminPort !== undefined ? { adminPort: server.adminPort } : {}),
      trustProxy: server.trustProxy ?? DEFAULTS.server.trustProxy,
      workers: server.workers === 'auto' ? availableParallelism() : server.workers ?? DEFAULTS.server.workers,
      timeouts: serverTimeouts,
      overload: { ...DEFAULTS.server.overload, ...server.overload },
      ...(server.rateLimit !== undefined ? { rateLimit: { ...server.rateLimit } } : {}),
      ...(server.cors
        ? {
            cors: {
              origins: server.cors.origins,
              credentials: server.cors.credentials ?? DEFAULTS.server.cors.credentials,
              exposedHeaders: [...(server.cors.exposedHeaders ?? DEFAULTS.server.cors.exposedHeaders)],
              maxAgeSeconds: server.cors.maxAgeSeconds ?? DEFAULTS.server.cors.maxAgeSeconds
            }
          }
        : {})
    },
    identity: {
      instance: (identity.instance ?? DEFAULTS.identity.instance).replace(/\/+$/, ''),
      tenantId,
      clientId,
      audiences: identity.audiences ?? [`api://${clientId}`, clientId],
      allowedTenants: allowedTenants.map((t) => t.toLowerCase()),
      clientCapabilities: [...(identity.clientCapabilities ?? DEFAULTS.identity.clientCapabilities)],
      clockSkewSeconds: identity.clockSkewSeconds ?? DEFAULTS.identity.clockSkewSeconds,
      keyRefreshCooldownSeconds: identity.keyRefreshCooldownSeconds ?? DEFAULTS.identity.keyRefreshCooldownSeconds,
      credential,
      timeoutMs: identity.timeoutMs ?? DEFAULTS.identity.timeoutMs,
      extraCaPems
    },
    routes,
    tokenCache: {
      ...(tokenCache.redis ? { redisUrl: tokenCache.redis.url } : {}),
      redisCommandTimeoutMs: tokenCache.redis?.commandTimeoutMs ?? DEFAULTS.tokenCache.redisCommandTimeoutMs,
      ...(tokenCache.encryptionKey ? { encryptionKey: tokenCache.encryptionKey } : {}),
      previousEncryptionKeys: [...(tokenCache.previousEncryptionKeys ?? [])],
      l1: { ...DEFAULTS.tokenCache.l1, ...tokenCache.l1 },
      expiryMarginSeconds: tokenCache.expiryMarginSeconds ?? DEFAULTS.tokenCache.expiryMarginSeconds,
      lockMs: tokenCache.lockMs ?? DEFAULTS.tokenCache.lockMs
    }
  }
}

const CREDENTIAL_KINDS = ['clientSecret', 'certificate', 'federatedTokenFile', 'managedIdentity']

/** The identity keys a config cannot do without, on the raw value (it may have failed the schema elsewhere). */
function identityGaps (identity: unknown): string[] {
  if (!isObject(identity)) return []
  const gaps: string[] = []
  if (identity.tenantId === undefined) gaps.push("identity.tenantId: missing (expected a tenant GUID or 'organizations'; AZURE_TENANT_ID also works)")
  if (identity.clientId === undefined) gaps.push('identity.clientId: missing (expected a GUID; AZURE_CLIENT_ID also works)')
  const credential = identity.credential ?? {}
  if (isObject(credential)) {
    const given = CREDENTIAL_KINDS.filter((kind) => credential[kind] !== undefined)
    if (given.length !== 1) gaps.push(`identity.credential: expected exactly one of ${CREDENTIAL_KINDS.join(', ')}${given.length > 1 ? ` (found ${given.join(', ')})` : ''}`)
  }
  return gaps
}

/** The one credential identityGaps found, its file paths through `filePath`. */
function pickCredential (c: NonNullable<RawConfig['identity']['credential']>, filePath: (file: string) => string): GatewayCredential {
  if (c.clientSecret !== undefined) return { kind: 'clientSecret', clientSecret: c.clientSecret }
  if (c.certificate !== undefined) return { kind: 'certificate', certificateFile: filePath(c.certificate.certificateFile), privateKeyFile: filePath(c.certificate.privateKeyFile) }
  if (c.federatedTokenFile !== undefined) return { kind: 'federatedTokenFile', federatedTokenFile: filePath(c.federatedTokenFile) }
  return { kind: 'managedIdentity', ...(c.managedIdentity?.clientId ? { clientId: c.managedIdentity.clientId } : {}) }
}

/** The Azure SDKs' variables fill what the file leaves out; what the file says wins. True when the credential is theirs. */
function applyAzureEnvironment (raw: Record<string, unknown>, env: Env): boolean {
  const identity = isObject(raw.identity) ? raw.identity : undefined
  if (identity === undefined) return false
  if (identity.clientId === undefined && env.AZURE_CLIENT_ID) identity.clientId = env.AZURE_CLIENT_ID
  if (identity.tenantId === undefined && env.AZURE_TENANT_ID) identity.tenantId = env.AZURE_TENANT_ID
  if (identity.instance === undefined && env.AZURE_AUTHORITY_HOST) identity.instance = env.AZURE_AUTHORITY_HOST
  if (identity.credential === undefined && env.AZURE_FEDERATED_TOKEN_FILE) {
    identity.credential = { federatedTokenFile: env.AZURE_FEDERATED_TOKEN_FILE }
    return true
  }
  return false
}

/** `fromEnv` gets the variables each substituted value came from, by key path, so errors never echo them. */
function substituteEnv (value: unknown, env: Env, path: string, issues: string[], fromEnv: Map<string, string[]>): unknown {
  if (typeof value === 'string') {
    // `${GW_SECRET}` or `${env:}` would otherwise go to Entra as a literal secret.
    if (value.replace(ENV_REF, '').includes('${')) {
      issues.push(`${path || '(root)'}: has a \${ that is not a well-formed \${env:NAME} reference (NAME: letters, digits and _, not starting with a digit)`)
      return value
    }
    const names = [...value.matchAll(ENV_REF)].map((m) => m[1]!)
    if (names.length > 0) fromEnv.set(path || '(root)', names)
    return value.replace(ENV_REF, (_match, name: string) => {
      const found = env[name]
      if (found === undefined) {
        issues.push(`${path || '(root)'}: environment variable ${name} is not set`)
        return ''
      }
      return found
    })
  }
  if (Array.isArray(value)) return value.map((v, i) => substituteEnv(v, env, join(path, String(i)), issues, fromEnv))
  if (isObject(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substituteEnv(v, env, join(path, k), issues, fromEnv)]))
  }
  return value
}

function keyPath (error: ValueError): string {
  return error.path.split('/').filter(Boolean).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~')).join('.') || '(root)'
}

function describe (error: ValueError, path: string, from: string[] | undefined): string {
  if (error.message.startsWith('Unexpected property')) return `${path}: unknown key`
  const expected = expectation(error)
  if (error.value === undefined) return `${path}: missing (expected ${expected})`
  return `${path}: expected ${expected}, got ${shownValue(error.value, { secret: (error.schema as { secret?: boolean }).secret === true, from })}`
}

const TYPE_NAMES: Partial<Record<string, string>> = { integer: 'an integer', number: 'a number', string: 'a string', boolean: 'true or false', array: 'a list', object: 'an object' }

/** What the schema asks for: its description (which says it all), else its type; a number's range either way. */
function expectation (error: ValueError): string {
  const s = error.schema as { description?: string, type?: unknown, minimum?: number, maximum?: number, minItems?: number }
  const type = typeof s.type === 'string' ? TYPE_NAMES[s.type] ?? `a ${s.type}` : undefined
  const range = s.minimum === undefined ? '' : s.maximum === undefined ? ` of at least ${s.minimum}` : ` from ${s.minimum} to ${s.maximum}`
  if (range !== '') return `${type ?? 'a number'}${range}${s.description === undefined ? '' : ` (${s.description})`}`
  if (s.description !== undefined) return s.description
  if (type === undefined) return error.message.toLowerCase()
  if (s.minItems === undefined || s.minItems === 0) return type
  return s.minItems === 1 ? 'a non-empty list' : `a list of at least ${s.minItems} items`
}

function join (path: string, key: string): string {
  return path ? `${path}.${key}` : key
}

function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
