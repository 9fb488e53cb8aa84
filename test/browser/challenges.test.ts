import t, { type Test } from 'tap'
import type { Page } from 'playwright-core'
import { DEMO_IDS } from '../../src/dev/demo-seed'
import { DEV_IDS } from '../../src/emulator'
import { ALICE, chromiumUnavailable, openDemo, shownAnswer, startBrowserKit, steps, viaPopup, type BrowserKit } from '../helpers/browser'

/**
 * Every challenge the gateway passes back, answered by the demo SPA's own code (challenges.js) with
 * real MSAL.js in Chromium: what the user sees on the page, and what the sample API received.
 */
const skip = chromiumUnavailable()

t.test('the demo SPA through every challenge', { skip }, async (t) => {
  const kit: BrowserKit = await startBrowserKit()
  t.teardown(() => kit.close())

  /** A fresh browser profile context, Alice signed in by popup. */
  const signedIn = async (t: Test): Promise<Page> => {
    const { context, page } = await openDemo(kit)
    t.teardown(() => context.close())
    await viaPopup(kit, page, '#sign-in-popup', ALICE)
    await page.waitForSelector(`#who:text("${DEV_IDS.alice.username}")`)
    return page
  }
  const lastReceived = (): Record<string, unknown> => kit.sampleApi.calls.at(-1)?.claims ?? {}

  for (const [call, api, shape] of [['mfa', DEMO_IDS.mfaApi, 'capolids'], ['mfa-docs-shape', DEMO_IDS.mfaApiDocsShape, 'polids']] as const) {
    await t.test(`MFA (${call}): challenge, second factor in a popup, 200`, async (t) => {
      const page = await signedIn(t)
      const received = kit.sampleApi.calls.length
      const pages = await viaPopup(kit, page, `button[data-call="${call}"]`, ALICE)
      t.same(pages, ['Enter code'], 'the emulator\'s session skips the password: only the second factor is asked')
      const shown = await shownAnswer(page)
      t.equal(shown.status, 'HTTP 200 from the sample API')
      t.match(shown.claims, { aud: api.clientId, scp: 'Items.Read', oid: DEV_IDS.alice.objectId, azp: DEV_IDS.gateway.clientId, amr: 'pwd mfa' })
      t.match(await steps(page), [
        /^call: GET \/mfa/,
        /^challenge received: 401 insufficient_claims$/,
        new RegExp(`^claims requested: \\{"access_token":\\{"${shape}"`),
        `re-sign-in: new token for ${DEV_IDS.alice.username}`,
        'retry: 200'
      ])
      t.equal(kit.sampleApi.calls.length, received + 1, 'the sample API was called once, after the second factor')
      t.match(lastReceived(), { aud: api.clientId, amr: ['pwd', 'mfa'] })
    })
  }

  await t.test('auth context step-up: cc_type=authcontext, second factor, 200 with acrs', async (t) => {
    const page = await signedIn(t)
    t.same(await viaPopup(kit, page, 'button[data-call="step-up"]', ALICE), ['Enter code'])
    const shown = await shownAnswer(page)
    t.equal(shown.status, 'HTTP 200 from the sample API')
    t.match(await steps(page), [
      /^call: GET \/step-up/,
      'challenge received: 401 insufficient_claims, cc_type=authcontext',
      `claims requested: {"access_token":{"acrs":{"essential":true,"value":"${DEMO_IDS.authContext}"}}}`,
      /^re-sign-in/,
      'retry: 200'
    ])
    t.match(shown.claims, { aud: DEV_IDS.sampleApi.clientId, amr: 'pwd mfa' })
    t.equal(shown.claims.acrs, DEMO_IDS.authContext, 'the page shows the acrs the downstream token carries')
    t.match(lastReceived(), { acrs: [DEMO_IDS.authContext] })
  })

  await t.test('CAE: the revoke button ends the sessions, the next call is challenged and recovers after signing in again', async (t) => {
    const page = await signedIn(t)
    await page.click('button[data-call="api"]')
    t.equal((await shownAnswer(page)).status, 'HTTP 200 from the sample API')
    const beforeRevocation = lastReceived()

    const pages = await viaPopup(kit, page, 'button[data-call="cae"]', ALICE)
    t.same(pages, ['Sign in', 'Enter password', 'Stay signed in?'], 'the session cookie ended with the revocation: the user signs in again')
    const shown = await shownAnswer(page)
    t.equal(shown.status, 'HTTP 200 from the sample API')
    t.match(await steps(page), [
      /^call: GET \/api\/items/,
      /^sessions revoked: the emulator revoked alice@contoso\.example's sessions/,
      /^challenge received: 401 insufficient_claims$/,
      /^claims requested: \{"access_token":\{"nbf":\{"essential":true, ?"value":"\d+"\}\}\}$/,
      /^re-sign-in/,
      'retry: 200'
    ])
    const revokedAt = kit.stack.emulator.sessions.revocationTime(DEV_IDS.tenantId, DEV_IDS.alice.objectId) ?? Infinity
    t.ok(Number(lastReceived().iat) >= revokedAt, 'the sample API finally received a token issued after the revocation')
    t.ok(Number(beforeRevocation.iat) < revokedAt, 'and had received one from before it')
  })

  await t.test('consent: 403 proposedAction=consent, the consent page, then 200 with the consented scope', async (t) => {
    const page = await signedIn(t)
    const pages = await viaPopup(kit, page, 'button[data-call="consent"]', ALICE)
    t.same(pages, ['Permissions requested'])
    const shown = await shownAnswer(page)
    t.equal(shown.status, 'HTTP 200 from the sample API')
    t.equal(shown.claims.scp, DEMO_IDS.ungrantedScope)
    t.match(await steps(page), [
      /^call: GET \/consent/,
      `challenge received: 403 insufficient_scope, proposedAction=consent, scope=${DEV_IDS.sampleApi.identifierUri}/${DEMO_IDS.ungrantedScope}`,
      /^consent requested: offline_access api:\/\/.*\/Items\.Write$/,
      'consent given: the consent window closed',
      'retry: 200'
    ])
    t.match(lastReceived(), { scp: DEMO_IDS.ungrantedScope, aud: DEV_IDS.sampleApi.clientId })
  })

  await t.test('a client without cp1 gets client_capability_required and claims_challenge_unsupported, not challenges', async (t) => {
    const page = await signedIn(t)
    await page.check('#no-cp1')
    await page.waitForSelector('#steps li[data-step="token renewed"]')
    t.same(await steps(page), ['token renewed: without cp1 (no xms_cc claim)'])
    await page.click('button[data-call="api"]')
    t.equal((await shownAnswer(page)).status, 'HTTP 200 from the sample API')
    t.notOk('xms_cc' in lastReceived(), 'the gateway declared no cp1 downstream either')

    await page.click('button[data-call="step-up"]')
    const stepUp = await shownAnswer(page)
    t.equal(stepUp.status, 'HTTP 403 from the gateway')
    t.match(stepUp.error, /^client_capability_required: .*\(this client did not declare cp1/)

    const received = kit.sampleApi.calls.length
    await page.click('button[data-call="cae"]')
    const cae = await shownAnswer(page)
    t.equal(cae.status, 'HTTP 401 from the gateway')
    t.match(cae.error, /^claims_challenge_unsupported: .*\(the sample API sent a claims challenge \(CAE\)/)
    t.notOk((await steps(page)).some((s) => s.startsWith('challenge received')), 'nothing for the page to answer')
    t.equal(kit.sampleApi.calls.length, received + 1, 'the sample API refused the older token once')
  })
})
