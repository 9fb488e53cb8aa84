import { randomBytes } from 'node:crypto'
import type { ConditionalAccess } from '../conditional-access'
import type { Directory } from '../directory'
import { EntraError } from '../entra-errors'
import type { ResourceScopes } from '../scopes'
import type { SeedApplication, SeedTenant, SeedUser } from '../seed-schema'
import type { Accounts } from './accounts'
import type { SignInClaims } from './claims'
import type { Clock } from './codes'
import type { ConsentModel, ConsentRequest } from './consent'
import * as pages from './pages'
import type { Session, Sessions } from './session-cookie'

/** How long a sign-in may sit on one of its pages. */
const INTERACTION_LIFETIME_MS = 60 * 60 * 1000

/** What the HTTP layer sends: a page, or a 302 back to the client; `cookie` a Set-Cookie to go with it. */
export type Reply = ({ kind: 'page', page: pages.Page } | { kind: 'redirect', location: string }) & { cookie?: string }

/** The user at the end of the steps. */
export interface SignedIn {
  user: SeedUser
  amr: string[]
  /** Seconds. */
  authTime: number
  session?: Session
}

/** Why the user is signing in (an /authorize request, a device code) and what to do at the end. */
export interface Purpose {
  /** The tenant segment the pages post to. */
  segment: string
  tenant: SeedTenant
  app: SeedApplication
  resources: ResourceScopes[]
  demands: SignInClaims
  prompt?: 'login' | 'none' | 'consent' | 'select_account'
  loginHint?: string
  /** The device code flow offers "Back" on the account page, which declines the request. */
  cancellable: boolean
  complete: (signedIn: SignedIn) => Reply
  cancel: (error: EntraError) => Reply
}

export type Step = 'account' | 'password' | 'second_factor' | 'no_second_factor' | 'stay_signed_in' | 'consent' | 'admin_approval' | 'done'

interface Interaction {
  id: string
  purpose: Purpose
  user?: SeedUser
  authenticated: boolean
  amr: string[]
  authTime: number
  /** Credentials were entered in this flow (then "Stay signed in?" is asked and a session begins). */
  fresh: boolean
  staySignedInAnswered: boolean
  consentAnswered: boolean
  session?: Session
  expiresAt: number
}

export interface SignInFlowDependencies {
  directory: Directory
  conditionalAccess: ConditionalAccess
  sessions: Sessions
  consents: ConsentModel
  accounts: Accounts
  clock: Clock
}

/**
 * The sign-in steps, in Entra's order: account, password, second factor (when a policy or the
 * claims request demands it), "Stay signed in?", consent. A valid session skips the credential
 * steps. Each page posts the flow's `ctx` back to `/<tenant>/login`.
 */
export class SignInFlow {
  private readonly interactions = new Map<string, Interaction>()

  constructor (private readonly deps: SignInFlowDependencies) {}

  /** Starts a sign-in; with a usable session and nothing left to ask, it completes at once. */
  start (purpose: Purpose, session: Session | undefined): Reply {
    return this.render(this.begin(purpose, session), undefined)
  }

  /** prompt=none: completes without UI or names the step that would need the user (Entra's error). */
  silent (purpose: Purpose, session: Session | undefined): Reply {
    const interaction = this.begin(purpose, session)
    const step = this.pendingStep(interaction)
    if (step === 'done') return this.finish(interaction)
    this.interactions.delete(interaction.id)
    return purpose.cancel(silentFailure(step, purpose))
  }

  /** A page's form came back. */
  submit (form: Record<string, string>, correlationId: string): Reply {
    const interaction = this.interactions.get(form.ctx ?? '')
    if (interaction === undefined || interaction.expiresAt <= this.deps.clock()) {
      if (interaction !== undefined) this.interactions.delete(interaction.id)
      return { kind: 'page', page: pages.errorPage(new EntraError('invalid_request', 50089, 'Authentication failed due to flow token expired. Start the sign-in again from the application.'), correlationId) }
    }
    const step = this.pendingStep(interaction)
    const error = this.apply(interaction, step, form)
    if (error instanceof EntraError) {
      this.interactions.delete(interaction.id)
      return interaction.purpose.cancel(error)
    }
    return this.render(interaction, error)
  }

  private begin (purpose: Purpose, session: Session | undefined): Interaction {
    const interaction: Interaction = {
      id: randomBytes(24).toString('base64url'),
      purpose,
      authenticated: false,
      amr: [],
      authTime: 0,
      fresh: false,
      staySignedInAnswered: false,
      consentAnswered: false,
      expiresAt: this.deps.clock() + INTERACTION_LIFETIME_MS
    }
    const sessionUser = session === undefined || session.tenantId !== purpose.tenant.id
      ? undefined
      : purpose.tenant.users?.find((u) => u.objectId === session.oid)
    const hinted = purpose.loginHint === undefined || purpose.loginHint.toLowerCase() === sessionUser?.username.toLowerCase()
    if (session !== undefined && sessionUser !== undefined && purpose.prompt !== 'login' && purpose.prompt !== 'select_account' && hinted) {
      Object.assign(interaction, { user: sessionUser, authenticated: true, amr: [...session.amr], authTime: session.authTime, session })
    } else if (session !== undefined && sessionUser !== undefined && purpose.prompt === 'select_account') {
      interaction.session = session
    }
    this.interactions.set(interaction.id, interaction)
    return interaction
  }

  pendingStep (interaction: Interaction): Step {
    const { purpose, user } = interaction
    if (user === undefined) return 'account'
    if (!interaction.authenticated) return 'password'
    if (this.needsSecondFactor(interaction, user) && !interaction.amr.includes('mfa')) {
      return user.mfaCode === undefined ? 'no_second_factor' : 'second_factor'
    }
    if (interaction.fresh && !interaction.staySignedInAnswered) return 'stay_signed_in'
    if (interaction.consentAnswered) return 'done'
    const requests = this.consentRequests(interaction, user)
    // Users cannot consent to Admin scopes: Entra shows "Need admin approval" instead of the consent page.
    if (this.deps.consents.adminOnly(requests).length > 0) return 'admin_approval'
    if (purpose.prompt === 'consent' || requests.some((r) => r.missing.length > 0)) return 'consent'
    return 'done'
  }

  /** Applies a form to the step it answers: undefined moves on, a string re-shows the page with it, an EntraError ends the flow. */
  private apply (interaction: Interaction, step: Step, form: Record<string, string>): string | EntraError | undefined {
    const { purpose } = interaction
    switch (step) {
      case 'account': {
        if (purpose.cancellable && form.cancel !== undefined) return new EntraError('authorization_declined', 65004, 'The end user denied the authorization request.')
        const username = (form.loginfmt ?? '').trim()
        const user = this.deps.directory.user(purpose.tenant, username)
        if (user === undefined) {
          return `This username may be incorrect. Make sure you typed it correctly. Otherwise, contact your admin. (AADSTS50034: The user account ${username} does not exist in the ${purpose.tenant.name} directory.)`
        }
        interaction.user = user
        const session = interaction.session
        if (session !== undefined && session.oid === user.objectId) {
          Object.assign(interaction, { authenticated: true, amr: [...session.amr], authTime: session.authTime })
        }
        return undefined
      }
      case 'password': {
        const user = interaction.user as SeedUser
        if (form.passwd !== user.password) {
          return 'Your account or password is incorrect. If you don\'t remember your password, reset it now. (AADSTS50126: Error validating credentials due to invalid username or password.)'
        }
        if (!this.deps.accounts.enabled(purpose.tenant.id, user.objectId)) return 'Your account has been locked. Contact your support person to unlock it, then try again. (AADSTS50057: The user account is disabled.)'
        Object.assign(interaction, {
          authenticated: true,
          amr: ['pwd'],
          authTime: this.deps.conditionalAccess.issuedAt(purpose.tenant.id, user.objectId, {}),
          fresh: true
        })
        return undefined
      }
      case 'second_factor': {
        if ((form.otc ?? '').trim() !== interaction.user?.mfaCode) return 'You didn\'t enter the expected verification code. Please try again.'
        interaction.amr = [...interaction.amr, 'mfa']
        if (interaction.session !== undefined) interaction.session.amr = [...interaction.amr]
        return undefined
      }
      case 'stay_signed_in': {
        const user = interaction.user as SeedUser
        interaction.staySignedInAnswered = true
        interaction.session = this.deps.sessions.create({
          tenantId: purpose.tenant.id,
          oid: user.objectId,
          authTime: interaction.authTime,
          amr: [...interaction.amr],
          persistent: form.kmsi === 'Yes'
        })
        return undefined
      }
      case 'consent': {
        if (form.consent !== 'Accept') return new EntraError('access_denied', 65004, 'User declined to consent to access the app.')
        const user = interaction.user as SeedUser
        for (const { client, scopes, missing } of this.consentRequests(interaction, user)) {
          if (missing.length > 0) {
            this.deps.consents.add(purpose.tenant, { clientId: client.clientId, resource: scopes.resource.clientId, scopes: missing, userObjectId: user.objectId })
          }
        }
        interaction.consentAnswered = true
        return undefined
      }
      case 'admin_approval':
        return adminApprovalRequired(purpose)
      case 'no_second_factor':
        return new EntraError('interaction_required', 50079, 'Due to a configuration change made by your administrator, or because you moved to a new location, you must enroll in multi-factor authentication: this user has no mfaCode in the emulator seed.')
      case 'done':
        return undefined
    }
  }

  private render (interaction: Interaction, error: string | undefined): Reply {
    const { purpose } = interaction
    const step: pages.StepPage = { action: `/${purpose.segment}/login`, ctx: interaction.id, appName: purpose.app.displayName }
    const page = (p: pages.Page): Reply => ({ kind: 'page', page: p })
    switch (this.pendingStep(interaction)) {
      case 'account':
        return page(pages.accountPage(step, interaction.session === undefined ? purpose.loginHint ?? '' : purpose.loginHint ?? this.sessionUsername(interaction), error, purpose.cancellable))
      case 'password':
        return page(pages.passwordPage(step, interaction.user?.username ?? '', error))
      case 'second_factor':
        return page(pages.secondFactorPage(step, error))
      case 'stay_signed_in':
        return page(pages.staySignedInPage(step))
      case 'consent': {
        // The client's own scopes all, the middle tiers' (combined consent) where still missing.
        const listed = this.consentRequests(interaction, interaction.user as SeedUser)
          .flatMap((r) => (r.client === purpose.app ? r.scopes.names : r.missing).map((name) => `${r.scopes.identifier}/${name}`))
        return page(pages.consentPage(step, listed))
      }
      case 'admin_approval':
        return page(pages.adminApprovalPage(step, this.deps.consents.adminOnly(this.consentRequests(interaction, interaction.user as SeedUser)), adminApprovalRequired(purpose)))
      case 'no_second_factor': {
        this.interactions.delete(interaction.id)
        return purpose.cancel(this.apply(interaction, 'no_second_factor', {}) as EntraError)
      }
      case 'done':
        return this.finish(interaction)
    }
  }

  private finish (interaction: Interaction): Reply {
    this.interactions.delete(interaction.id)
    const user = interaction.user as SeedUser
    return interaction.purpose.complete({
      user,
      amr: interaction.amr,
      authTime: interaction.authTime,
      ...(interaction.session === undefined ? {} : { session: interaction.session })
    })
  }

  private needsSecondFactor (interaction: Interaction, user: SeedUser): boolean {
    const { purpose } = interaction
    if (purpose.demands.requiresMfa) return true
    return purpose.resources.some((r) => this.deps.conditionalAccess.mfaRequired(purpose.tenant, r.resource, { oid: user.objectId, username: user.username }))
  }

  private consentRequests (interaction: Interaction, user: SeedUser): ConsentRequest[] {
    const { purpose } = interaction
    return this.deps.consents.requests(purpose.tenant, purpose.app, purpose.resources, user.objectId)
  }

  private sessionUsername (interaction: Interaction): string {
    const oid = interaction.session?.oid
    return interaction.purpose.tenant.users?.find((u) => u.objectId === oid)?.username ?? ''
  }
}

function silentFailure (step: Step, purpose: Purpose): EntraError {
  switch (step) {
    case 'account':
    case 'password':
      return purpose.loginHint === undefined
        ? new EntraError('login_required', 50058, 'A silent sign-in request was sent but no user is signed in. The cookies used to represent the user\'s session were not sent in the request to Azure AD. This can happen if the user is using Internet Explorer or Edge, and the web app sending the silent sign-in request is in different IE security zone than the Azure AD endpoint (login.microsoftonline.com).')
        : new EntraError('login_required', 50058, `A silent sign-in request was sent but the user '${purpose.loginHint}' is not signed in.`)
    case 'second_factor':
    case 'no_second_factor':
      return new EntraError('interaction_required', 50076, `Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '${purpose.resources[0]?.resource.clientId ?? purpose.app.clientId}'.`)
    case 'consent':
    case 'admin_approval':
    case 'stay_signed_in':
    case 'done':
      return new EntraError('consent_required', 65001, `The user or administrator has not consented to use the application with ID '${purpose.app.clientId}' named '${purpose.app.displayName}'. Send an interactive authorization request for this user and resource.`)
  }
}

/** The "Need admin approval" page's wording, and the error its "return to the application" sends back. */
function adminApprovalRequired (purpose: Purpose): EntraError {
  return new EntraError('access_denied', 90094, `An administrator of ${purpose.tenant.name} has set a policy that prevents you from granting ${purpose.app.displayName} the permissions it is requesting. Contact an administrator of ${purpose.tenant.name}, who can grant permissions to this app on your behalf.`)
}
