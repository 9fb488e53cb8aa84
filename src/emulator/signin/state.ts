import type { ConditionalAccess } from '../conditional-access'
import type { Directory } from '../directory'
import { Accounts } from './accounts'
import { AuthorizationCodes, type Clock } from './codes'
import { ConsentModel } from './consent'
import { DeviceCodes } from './device-codes'
import { SignInFlow } from './flow'
import { RefreshTokens } from './refresh-tokens'
import { Sessions } from './session-cookie'

/** Everything interactive sign-in remembers between requests, in memory like the rest of the emulator. */
export interface SignInState {
  clock: Clock
  accounts: Accounts
  sessions: Sessions
  codes: AuthorizationCodes
  refreshTokens: RefreshTokens
  deviceCodes: DeviceCodes
  consents: ConsentModel
  flow: SignInFlow
}

export function createSignInState (directory: Directory, conditionalAccess: ConditionalAccess, clock: Clock): SignInState {
  const accounts = new Accounts(directory)
  // A revocation (or a disabled account) ends the browser session too, not only the tokens.
  const sessions = new Sessions((s) => accounts.enabled(s.tenantId, s.oid) && s.authTime >= (conditionalAccess.revocationTime(s.tenantId, s.oid) ?? 0))
  const consents = new ConsentModel(directory)
  return {
    clock,
    accounts,
    sessions,
    codes: new AuthorizationCodes(clock),
    refreshTokens: new RefreshTokens(clock),
    deviceCodes: new DeviceCodes(clock),
    consents,
    flow: new SignInFlow({ directory, conditionalAccess, sessions, consents, accounts, clock })
  }
}
