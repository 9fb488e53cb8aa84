import { X509Certificate } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { extname } from 'node:path'
import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { Value, ValueErrorType, type ValueError } from '@sinclair/typebox/value'
import { parse as parseYaml } from 'yaml'
import { MfaPolicySchema } from './conditional-access'
import { FailureRuleSchema } from './failure-rules'

const GUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
// `description` doubles as the human wording of a pattern mismatch (see describe()).
const Guid = Type.String({ pattern: GUID_PATTERN, description: 'a GUID' })
const Name = Type.String({ minLength: 1 })
const ScopeName = Type.String({ pattern: '^[^\\s/]+$', description: 'a scope or role name without spaces or slashes' })

/**
 * A federated identity credential (workload identity federation). `{emulator}` in the issuer stands
 * for the emulator's URL, which is known only once it listens (e.g. `{emulator}/k8s/cluster-a`).
 */
const FederatedCredentialSchema = Type.Object({
  issuer: Name,
  subject: Name,
  audiences: Type.Array(Name, { minItems: 1 })
}, { additionalProperties: false })

const ApplicationSchema = Type.Object({
  clientId: Guid,
  displayName: Name,
  secrets: Type.Optional(Type.Array(Name)),
  /** PEM certificates whose keys may sign client assertions (Entra's keyCredentials). */
  certificates: Type.Optional(Type.Array(Type.String({ pattern: '-----BEGIN CERTIFICATE-----', description: 'a PEM certificate' }))),
  federatedCredentials: Type.Optional(Type.Array(FederatedCredentialSchema)),
  publicClient: Type.Optional(Type.Boolean()),
  identifierUris: Type.Optional(Type.Array(Name)),
  scopes: Type.Optional(Type.Array(ScopeName)),
  appRoles: Type.Optional(Type.Array(ScopeName)),
  accessTokenAcceptedVersion: Type.Optional(Type.Union([Type.Literal(1), Type.Literal(2), Type.Null()]))
}, { additionalProperties: false })

const UserSchema = Type.Object({
  username: Name,
  password: Name,
  objectId: Guid,
  name: Name
}, { additionalProperties: false })

const AppRoleAssignmentSchema = Type.Object({
  clientId: Guid,
  resource: Guid,
  role: ScopeName
}, { additionalProperties: false })

/** A user-assigned (or the one system-assigned) managed identity the emulator's identity endpoint serves. */
const ManagedIdentitySchema = Type.Object({
  clientId: Guid,
  objectId: Guid,
  displayName: Name,
  systemAssigned: Type.Optional(Type.Boolean())
}, { additionalProperties: false })

const TenantSchema = Type.Object({
  id: Guid,
  name: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9.-]*$', description: 'a tenant name made of letters, digits, dots and dashes' }),
  applications: Type.Array(ApplicationSchema),
  users: Type.Optional(Type.Array(UserSchema)),
  appRoleAssignments: Type.Optional(Type.Array(AppRoleAssignmentSchema)),
  managedIdentities: Type.Optional(Type.Array(ManagedIdentitySchema))
}, { additionalProperties: false })

export const EmulatorSeedSchema = Type.Object({
  tenants: Type.Array(TenantSchema, { minItems: 1 }),
  /** Kubernetes-style OIDC issuers the emulator hosts at `{emulator}/k8s/<name>` (discovery + JWKS). */
  workloadIssuers: Type.Optional(Type.Array(Type.String({ pattern: '^[a-z0-9][a-z0-9-]*$', description: 'an issuer name made of lowercase letters, digits and dashes' }))),
  /** Token endpoint failures active from the start (see failures.ts); `injectFailure()` adds more at run time. */
  failures: Type.Optional(Type.Array(FailureRuleSchema)),
  /** Conditional-access style "MFA required for this resource" policies (see conditional-access.ts); `requireMfa()` adds more at run time. */
  mfaPolicies: Type.Optional(Type.Array(MfaPolicySchema))
}, { additionalProperties: false })

export type EmulatorSeed = Static<typeof EmulatorSeedSchema>
export type SeedTenant = Static<typeof TenantSchema>
export type SeedApplication = Static<typeof ApplicationSchema>
export type SeedUser = Static<typeof UserSchema>
export type SeedManagedIdentity = Static<typeof ManagedIdentitySchema>
export type SeedFederatedCredential = Static<typeof FederatedCredentialSchema>

export { defaultSeed, DEV_IDS } from './default-seed'

/** A seed that cannot be used; the message names the file and every offending key path. */
export class SeedError extends Error {
  override name = 'SeedError'
  constructor (readonly source: string, readonly issues: string[]) {
    super(`invalid emulator seed in ${source}: ${issues.join('; ')}`)
  }
}

export async function loadSeedFile (file: string): Promise<EmulatorSeed> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new SeedError(file, [`cannot read the file (${(err as NodeJS.ErrnoException).code ?? String(err)})`])
  }
  const isJson = extname(file).toLowerCase() === '.json'
  let raw: unknown
  try {
    raw = isJson ? JSON.parse(text) : parseYaml(text)
  } catch (err) {
    throw new SeedError(file, [`not valid ${isJson ? 'JSON' : 'YAML'}: ${(err as Error).message.split('\n')[0]}`])
  }
  return parseSeed(raw, file)
}

export function parseSeed (raw: unknown, source = 'seed'): EmulatorSeed {
  const issues: string[] = []
  const seen = new Set<string>()
  for (const error of Value.Errors(EmulatorSeedSchema, raw)) {
    const path = keyPath(error.path)
    // A union or a wrong type reports several errors for one key; the first one is enough.
    if (seen.has(path)) continue
    seen.add(path)
    issues.push(describe(error, path))
  }
  if (issues.length === 0) issues.push(...crossReferenceIssues(raw as EmulatorSeed))
  if (issues.length > 0) throw new SeedError(source, issues)
  return raw as EmulatorSeed
}

function keyPath (pointer: string): string {
  const path = pointer.split('/').slice(1).map((part) => /^\d+$/.test(part) ? `[${part}]` : `.${part}`).join('')
  return path.startsWith('.') ? path.slice(1) : path === '' ? '(root)' : path
}

function describe (error: ValueError, path: string): string {
  const hint = (error.schema as TSchema & { description?: string }).description
  switch (error.type) {
    case ValueErrorType.ObjectAdditionalProperties:
      return `${path}: unknown key`
    case ValueErrorType.ObjectRequiredProperty:
      return `${path}: missing`
    case ValueErrorType.StringPattern:
      return `${path}: expected ${hint ?? 'a different value'}, got ${JSON.stringify(error.value)}`
    default:
      return `${path}: ${error.message.toLowerCase()}`
  }
}

/** What the schema cannot see: duplicates and references to things that do not exist. */
function crossReferenceIssues (seed: EmulatorSeed): string[] {
  const issues: string[] = []
  const tenantKeys = new Set<string>()
  seed.tenants.forEach((tenant, t) => {
    for (const key of [tenant.id.toLowerCase(), tenant.name.toLowerCase()]) {
      if (tenantKeys.has(key)) issues.push(`tenants[${t}]: a tenant with id or name '${key}' is already defined`)
      tenantKeys.add(key)
    }
    const apps = new Map<string, SeedApplication>()
    const identifiers = new Set<string>()
    tenant.applications.forEach((app, a) => {
      const clientId = app.clientId.toLowerCase()
      if (apps.has(clientId)) issues.push(`tenants[${t}].applications[${a}].clientId: '${app.clientId}' is already used by another application`)
      apps.set(clientId, app)
      app.certificates?.forEach((pem, c) => {
        try {
          // eslint-disable-next-line no-new
          new X509Certificate(pem)
        } catch {
          issues.push(`tenants[${t}].applications[${a}].certificates[${c}]: not a readable PEM certificate`)
        }
      })
      for (const uri of app.identifierUris ?? []) {
        if (identifiers.has(uri)) issues.push(`tenants[${t}].applications[${a}].identifierUris: '${uri}' is already used by another application`)
        identifiers.add(uri)
      }
    })
    const usernames = new Set<string>()
    tenant.users?.forEach((user, u) => {
      const username = user.username.toLowerCase()
      if (usernames.has(username)) issues.push(`tenants[${t}].users[${u}].username: '${user.username}' is already used`)
      usernames.add(username)
    })
    tenant.appRoleAssignments?.forEach((assignment, r) => {
      const at = `tenants[${t}].appRoleAssignments[${r}]`
      if (!apps.has(assignment.clientId.toLowerCase())) issues.push(`${at}.clientId: no application '${assignment.clientId}' in this tenant`)
      const resource = apps.get(assignment.resource.toLowerCase())
      if (resource === undefined) {
        issues.push(`${at}.resource: no application '${assignment.resource}' in this tenant`)
      } else if (!(resource.appRoles ?? []).includes(assignment.role)) {
        issues.push(`${at}.role: '${assignment.role}' is not an app role of ${resource.displayName}`)
      }
    })
  })
  seed.mfaPolicies?.forEach((policy, p) => {
    const tenants = policy.tenantId === undefined
      ? seed.tenants
      : seed.tenants.filter((t) => [t.id.toLowerCase(), t.name.toLowerCase()].includes(policy.tenantId?.toLowerCase() ?? ''))
    const key = policy.resource.replace(/\/$/, '').toLowerCase()
    const found = tenants.some((t) => t.applications.some((app) =>
      app.clientId.toLowerCase() === key || (app.identifierUris ?? []).some((uri) => uri.replace(/\/$/, '').toLowerCase() === key)))
    if (!found) issues.push(`mfaPolicies[${p}].resource: no application '${policy.resource}'${policy.tenantId === undefined ? '' : ` in tenant '${policy.tenantId}'`}`)
  })
  return issues
}
