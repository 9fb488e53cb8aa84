import { X509Certificate } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { extname } from 'node:path'
import type { TSchema } from '@sinclair/typebox'
import { Value, ValueErrorType, type ValueError } from '@sinclair/typebox/value'
import { parse as parseYaml } from 'yaml'
import { Directory } from './directory'
import { EmulatorSeedSchema, type EmulatorSeed, type MfaPolicy, type SeedApplication } from './seed-schema'

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
  const issues = schemaIssues(EmulatorSeedSchema, raw)
  if (issues.length === 0) issues.push(...crossReferenceIssues(raw as EmulatorSeed))
  if (issues.length > 0) throw new SeedError(source, issues)
  return raw as EmulatorSeed
}

/** What is wrong with a value for a seed schema, one line per offending key path. */
export function schemaIssues (schema: TSchema, raw: unknown): string[] {
  const issues: string[] = []
  const seen = new Set<string>()
  for (const error of Value.Errors(schema, raw)) {
    const path = keyPath(error.path)
    // A union or a wrong type reports several errors for one key; the first one is enough.
    if (seen.has(path)) continue
    seen.add(path)
    issues.push(describe(error, path))
  }
  return issues
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
    const directory = new Directory(seed)
    tenant.applications.forEach((app, a) => {
      app.requiredResourceAccess?.forEach((access, r) => {
        const at = `tenants[${t}].applications[${a}].requiredResourceAccess[${r}]`
        const resource = directory.resource(tenant, access.resourceAppId)
        if (resource === undefined) {
          issues.push(`${at}.resourceAppId: no application '${access.resourceAppId}' in this tenant`)
          return
        }
        const exposed = directory.exposedScopes(resource).map((s) => s.toLowerCase())
        for (const scope of access.scopes) if (!exposed.includes(scope.toLowerCase())) issues.push(`${at}.scopes: '${scope}' is not a scope of ${resource.displayName}`)
      })
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
  const directory = new Directory(seed)
  seed.mfaPolicies?.forEach((policy, p) => {
    const issue = mfaPolicyIssue(directory, policy)
    if (issue !== undefined) issues.push(`mfaPolicies[${p}].${issue}`)
  })
  return issues
}

/** An MFA policy must name an application of its tenant (of any tenant without `tenantId`): the key and why, or undefined. */
export function mfaPolicyIssue (directory: Directory, policy: MfaPolicy): string | undefined {
  const tenants = policy.tenantId === undefined ? directory.tenants : [directory.tenant(policy.tenantId)].filter((t) => t !== undefined)
  if (tenants.some((tenant) => directory.resource(tenant, policy.resource) !== undefined)) return undefined
  return `resource: no application '${policy.resource}'${policy.tenantId === undefined ? '' : ` in tenant '${policy.tenantId}'`}`
}
