import { createHash, randomBytes } from 'node:crypto'
import { PublicClientApplication, type AuthenticationResult } from '@azure/msal-node'
import { DEV_IDS } from '../../src/emulator'
import type { MsalKit } from './msal-clients'
import { SignInDriver, type Credentials } from './sign-in-driver'

export const LOOPBACK_REDIRECT = 'http://localhost:53123'

export function pkce (): { verifier: string, challenge: string } {
  const verifier = randomBytes(32).toString('base64url')
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') }
}

/**
 * The desktop-app sign-in: msal-node's getAuthCodeUrl, the pages driven by element names, then
 * acquireTokenByCode, all with the dev public client unless told otherwise.
 */
export async function interactiveSignIn (kit: MsalKit, options: {
  scopes: string[]
  credentials: Credentials
  pca?: PublicClientApplication
  claims?: string
  driver?: SignInDriver
  redirectUri?: string
}): Promise<{ pca: PublicClientApplication, result: AuthenticationResult, driver: SignInDriver }> {
  const pca = options.pca ?? new PublicClientApplication(kit.config(DEV_IDS.devClient.clientId))
  const driver = options.driver ?? new SignInDriver(kit.agent, kit.emulator.url)
  const { verifier, challenge } = pkce()
  const redirectUri = options.redirectUri ?? LOOPBACK_REDIRECT
  const url = await pca.getAuthCodeUrl({
    scopes: options.scopes,
    redirectUri,
    codeChallenge: challenge,
    codeChallengeMethod: 'S256',
    ...(options.claims === undefined ? {} : { claims: options.claims })
  })
  const answer = await driver.signIn(url, options.credentials)
  const code = answer.location === undefined ? null : new URL(answer.location).searchParams.get('code')
  if (code === null) throw new Error(`the sign-in ended without a code: ${answer.status} ${answer.location ?? answer.body.slice(0, 500)}`)
  const result = await pca.acquireTokenByCode({ code, scopes: options.scopes, redirectUri, codeVerifier: verifier })
  return { pca, result, driver }
}

/** The rejection of a promise, for asserting on its fields. */
export async function rejection (promise: Promise<unknown>): Promise<Record<string, unknown>> {
  try {
    await promise
  } catch (err) {
    return err as Record<string, unknown>
  }
  throw new Error('expected a rejection')
}
