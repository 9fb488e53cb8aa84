import { Type, type Static } from '@sinclair/typebox'

/**
 * Every TypeBox schema of the emulator's seed, in one module that imports nothing of the emulator:
 * the seed parser, the default seed, conditional access and the failure rules all read their types
 * from here, so none of them depends on another through the seed.
 */

const GUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
// `description` doubles as the human wording of a pattern mismatch (see describe()).
const Guid = Type.String({ pattern: GUID_PATTERN, description: 'a GUID' })
const Name = Type.String({ minLength: 1 })
const ScopeName = Type.String({ pattern: '^[^\\s/]+$', description: 'a scope or role name without spaces or slashes' })

// Interactive sign-in, named as in an Entra application manifest.
const RedirectUri = Type.String({ pattern: '^[a-zA-Z][a-zA-Z0-9+.-]*:', description: 'an absolute URI' })

/** Entra's three platforms: each decides how a code may be redeemed (spa: cross-origin only, no secret). */
const RedirectUrisSchema = Type.Object({
  spa: Type.Optional(Type.Array(RedirectUri)),
  web: Type.Optional(Type.Array(RedirectUri)),
  /** Mobile and desktop: loopback entries (http://localhost, http://127.0.0.1) match any port. */
  publicClient: Type.Optional(Type.Array(RedirectUri))
}, { additionalProperties: false })

/** A delegated permission grant; without `userObjectId` it is an admin's, for every user. */
export const ConsentSchema = Type.Object({
  clientId: Name,
  /** The resource's client id or one of its identifier URIs. */
  resource: Name,
  scopes: Type.Array(ScopeName),
  userObjectId: Type.Optional(Name)
}, { additionalProperties: false })

export type ConsentGrant = Static<typeof ConsentSchema>

/**
 * A federated identity credential (workload identity federation). `{emulator}` in the issuer stands
 * for the emulator's URL, which is known only once it listens (e.g. `{emulator}/k8s/cluster-a`).
 */
const FederatedCredentialSchema = Type.Object({
  issuer: Name,
  subject: Name,
  audiences: Type.Array(Name, { minItems: 1 })
}, { additionalProperties: false })

/** An exposed delegated permission with its consent type: `Admin` ones only an admin can grant (Entra's "Need admin approval"). */
const PermissionScopeSchema = Type.Object({
  value: ScopeName,
  type: Type.Union([Type.Literal('User'), Type.Literal('Admin')], { description: 'User or Admin' })
}, { additionalProperties: false })

/**
 * An application's statically configured permissions on one resource, what `.default` asks for.
 * Entra's manifest lists permission GUIDs under `resourceAccess`; the emulator takes scope names.
 */
const RequiredResourceAccessSchema = Type.Object({
  /** The resource's client id or one of its identifier URIs. */
  resourceAppId: Name,
  scopes: Type.Array(ScopeName)
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
  /** Exposed scopes with their consent type (Entra's `api.oauth2PermissionScopes`); exposed as well as `scopes`. */
  oauth2PermissionScopes: Type.Optional(Type.Array(PermissionScopeSchema)),
  /** The statically configured permissions (`.default`, combined consent through `knownClientApplications`). */
  requiredResourceAccess: Type.Optional(Type.Array(RequiredResourceAccessSchema)),
  appRoles: Type.Optional(Type.Array(ScopeName)),
  accessTokenAcceptedVersion: Type.Optional(Type.Union([Type.Literal(1), Type.Literal(2), Type.Null()])),
  redirectUris: Type.Optional(RedirectUrisSchema),
  /**
   * Client apps whose consent to this API also consents to this API's `requiredResourceAccess`
   * (combined consent), so the API's OBO calls for them need no consent of their own.
   */
  knownClientApplications: Type.Optional(Type.Array(Guid))
}, { additionalProperties: false })

const UserSchema = Type.Object({
  username: Name,
  password: Name,
  objectId: Guid,
  name: Name,
  /** The second factor: the code the "Enter code" page accepts. */
  mfaCode: Type.Optional(Type.String({ pattern: '^\\d{4,10}$', description: 'a string of 4 to 10 digits' })),
  /** false: sign-in and refresh tokens are refused (AADSTS50057). */
  accountEnabled: Type.Optional(Type.Boolean())
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
  managedIdentities: Type.Optional(Type.Array(ManagedIdentitySchema)),
  consents: Type.Optional(Type.Array(ConsentSchema)),
  /** true: scopes nobody consented to ask for consent (AADSTS65001 without a sign-in); default: all consented. */
  enforceConsent: Type.Optional(Type.Boolean())
}, { additionalProperties: false })

export const MFA_SHAPES = ['interaction_required', 'basic_action'] as const
export type MfaShape = typeof MFA_SHAPES[number]

export const MfaPolicySchema = Type.Object({
  /** The protected resource: its client id or one of its identifier URIs. */
  resource: Type.String({ minLength: 1 }),
  /**
   * How Entra words the refusal (the fixtures' two shapes): `interaction_required` + AADSTS50079 +
   * `polids` claims, or `invalid_grant` + suberror `basic_action` + AADSTS50076 + `capolids` claims
   * (the default).
   */
  shape: Type.Optional(Type.Union(MFA_SHAPES.map((s) => Type.Literal(s)))),
  /** The policy id the claims name; default: the fixtures' id for the shape. */
  policyId: Type.Optional(Type.String({ minLength: 1 })),
  tenantId: Type.Optional(Type.String({ minLength: 1 })),
  /** Only this user (object id or username); default: every user. */
  userObjectId: Type.Optional(Type.String({ minLength: 1 })),
  username: Type.Optional(Type.String({ minLength: 1 }))
}, { additionalProperties: false })

export type MfaPolicy = Static<typeof MfaPolicySchema>

/**
 * Token endpoint failures the emulator can be told to produce (see failure-rules.ts for the answers).
 */
export const FAILURE_KINDS = [
  'mfa_interaction_required', // interaction_required + AADSTS50079 + claims (the docs' shape)
  'mfa_basic_action', // invalid_grant + suberror basic_action + AADSTS50076 + claims (what Entra usually sends)
  'consent_required', // invalid_grant + suberror consent_required + AADSTS65001
  'invalid_scope', // invalid_scope + AADSTS70011
  'invalid_client_secret', // invalid_client + AADSTS7000215, HTTP 401
  'throttled', // HTTP 429 + Retry-After + AADSTS50196
  'server_error', // HTTP 500 (or `status`: 503) with a transient-error body
  'slow', // waits `delayMs`, then answers as it would have
  'response' // answers `status`/`body`/`headers` verbatim (to replay captured Entra bodies)
] as const
export type FailureKind = typeof FAILURE_KINDS[number]

/** Grant names a failure rule may use: friendly names besides the grant_type values themselves. */
export const FAILURE_GRANTS = ['obo', 'on_behalf_of', 'urn:ietf:params:oauth:grant-type:jwt-bearer', 'client_credentials', 'password'] as const
export type FailureGrant = typeof FAILURE_GRANTS[number]

export const FailureRuleSchema = Type.Object({
  kind: Type.Union(FAILURE_KINDS.map((k) => Type.Literal(k)), { description: `one of ${FAILURE_KINDS.join(', ')}` }),
  /** obo | on_behalf_of | client_credentials | password (or a grant_type value). */
  grant: Type.Optional(Type.Union(FAILURE_GRANTS.map((g) => Type.Literal(g)), { description: 'obo, client_credentials or password' })),
  clientId: Type.Optional(Type.String({ minLength: 1 })),
  tenantId: Type.Optional(Type.String({ minLength: 1 })),
  username: Type.Optional(Type.String({ minLength: 1 })),
  userObjectId: Type.Optional(Type.String({ minLength: 1 })),
  /** Matches when the request's `scope` contains this scope (case-insensitive). */
  scope: Type.Optional(Type.String({ minLength: 1 })),
  /** How many requests it fails; omitted = until removed. */
  times: Type.Optional(Type.Integer({ minimum: 1 })),
  /** MFA kinds: the claims request to send (JSON text); default: the fixtures' claims. */
  claims: Type.Optional(Type.String({ minLength: 1 })),
  retryAfterSeconds: Type.Optional(Type.Integer({ minimum: 0 })),
  status: Type.Optional(Type.Integer({ minimum: 100, maximum: 599 })),
  delayMs: Type.Optional(Type.Integer({ minimum: 0 })),
  body: Type.Optional(Type.Unknown()),
  headers: Type.Optional(Type.Record(Type.String(), Type.String()))
}, { additionalProperties: false })

export type FailureRule = Static<typeof FailureRuleSchema>

export const EmulatorSeedSchema = Type.Object({
  tenants: Type.Array(TenantSchema, { minItems: 1 }),
  /** Kubernetes-style OIDC issuers the emulator hosts at `{emulator}/k8s/<name>` (discovery + JWKS). */
  workloadIssuers: Type.Optional(Type.Array(Type.String({ pattern: '^[a-z0-9][a-z0-9-]*$', description: 'an issuer name made of lowercase letters, digits and dashes' }))),
  /** Token endpoint failures active from the start (see failure-rules.ts); `injectFailure()` adds more at run time. */
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
