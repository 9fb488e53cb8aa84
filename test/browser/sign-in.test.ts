import t, { type Test } from 'tap'
import type { Page } from 'playwright-core'
import { DEV_IDS } from '../../src/emulator'
import { ALICE, answerSignIn, chromiumUnavailable, launchChromium, openDemo, shownAnswer, startBrowserKit, steps, viaPopup, type BrowserKit } from '../helpers/browser'

/** Signing in and out of the demo SPA with real MSAL.js in Chromium, against the dev stack's emulator. */
const skip = chromiumUnavailable()
const SIGNED_IN = `Signed in as ${DEV_IDS.alice.name} (${DEV_IDS.alice.username})`

t.test('demo SPA sign-in and sign-out with real MSAL.js in Chromium', { skip }, async (t) => {
  const kit: BrowserKit = await startBrowserKit()
  t.teardown(() => kit.close())
  const grants = (): Record<string, number> => kit.stack.emulator.records.tokenRequestCounts().byGrant

  /** The sample API's answer through the gateway, as the page shows it and as the sample API received it. */
  const callsTheApi = async (t: Test, page: Page): Promise<void> => {
    const received = kit.sampleApi.calls.length
    await page.click('button[data-call="api"]')
    const shown = await shownAnswer(page)
    t.equal(shown.status, 'HTTP 200 from the sample API')
    t.match(shown.claims, { aud: DEV_IDS.sampleApi.clientId, scp: 'Items.Read', oid: DEV_IDS.alice.objectId, azp: DEV_IDS.gateway.clientId, amr: 'pwd', acrs: '(none)' })
    t.equal(kit.sampleApi.calls.length, received + 1)
    t.match(kit.sampleApi.calls.at(-1), { path: '/items', claims: { aud: DEV_IDS.sampleApi.clientId, oid: DEV_IDS.alice.objectId, azp: DEV_IDS.gateway.clientId } })
  }

  await t.test('sign in by redirect', async (t) => {
    const { context, page } = await openDemo(kit)
    t.teardown(() => context.close())
    t.equal(await page.textContent('#who'), 'Not signed in')
    // Until MSAL has navigated away, the page is still the demo's own, which answerSignIn would
    // take for the end of the sign-in: wait for the emulator's first page before answering it.
    await Promise.all([page.waitForURL((url) => url.origin === kit.stack.emulator.url, { timeout: 20_000 }), page.click('#sign-in-redirect')])
    t.same(await answerSignIn(page, kit.stack.emulator.url, ALICE), ['Sign in', 'Enter password', 'Stay signed in?'])
    t.equal(new URL(page.url()).pathname, '/', 'the redirect bridge sent the browser back to the page that signed in')
    await page.waitForSelector('body[data-ready="true"]')
    t.equal(await page.textContent('#who'), SIGNED_IN)
    await callsTheApi(t, page)
  })

  await t.test('sign in by popup', async (t) => {
    const { context, page } = await openDemo(kit)
    t.teardown(() => context.close())
    t.same(await viaPopup(kit, page, '#sign-in-popup', ALICE), ['Sign in', 'Enter password', 'Stay signed in?'])
    await page.waitForSelector(`#who:text("${SIGNED_IN}")`)
    t.same(await steps(page), [`signed in: ${DEV_IDS.alice.username} (popup)`])
    t.equal(new URL(page.url()).pathname, '/', 'the page never left')
    await callsTheApi(t, page)
  })

  await t.test('ssoSilent after sign-in: a new tab signs in without a page', async (t) => {
    const { context, page } = await openDemo(kit)
    t.teardown(() => context.close())
    await viaPopup(kit, page, '#sign-in-popup', ALICE)
    await page.waitForSelector(`#who:text("${SIGNED_IN}")`)

    // A new tab: MSAL's session storage is empty there, the emulator's session cookie is not.
    const tab = await context.newPage()
    let popups = 0
    tab.on('popup', () => { popups++ })
    await tab.goto(`${kit.stack.spaUrl}/`)
    await tab.waitForSelector('body[data-ready="true"]')
    t.equal(await tab.textContent('#who'), 'Not signed in')
    const codes = grants().authorization_code ?? 0
    await tab.click('#sso-silent')
    await tab.waitForSelector(`#who:text("${SIGNED_IN}")`)
    t.same(await steps(tab), [`signed in: ${DEV_IDS.alice.username} (ssoSilent: hidden iframe, the emulator's session cookie, no page shown)`])
    t.equal(popups, 0, 'no window opened')
    t.equal(grants().authorization_code, codes + 1, 'the hidden iframe got a code, redeemed like any other')
    await callsTheApi(t, tab)
  })

  await t.test('silent renewal after the access token expired: the refresh token, no sign-in page', async (t) => {
    const context = await kit.browser.newContext()
    t.teardown(() => context.close())
    context.setDefaultTimeout(20_000)
    // The page's clock, not the emulator's: MSAL decides from it whether its cached token is still good.
    await context.clock.install()
    const page = await context.newPage()
    await page.goto(`${kit.stack.spaUrl}/`)
    await page.waitForSelector('body[data-ready="true"]')
    await viaPopup(kit, page, '#sign-in-popup', ALICE)
    await page.waitForSelector(`#who:text("${SIGNED_IN}")`)

    await page.click('#renew')
    await page.waitForSelector('#steps li[data-step="token"]')
    t.match(await steps(page), [/^token: from the cache, valid until /])

    let popups = 0
    page.on('popup', () => { popups++ })
    const before = { refresh: grants().refresh_token ?? 0, code: grants().authorization_code ?? 0 }
    await context.clock.fastForward('02:00:00')
    await page.click('#renew')
    await page.waitForSelector('#steps li[data-step="token"]')
    t.match(await steps(page), [/^token: renewed silently with the refresh token \(no sign-in page\), valid until /])
    t.equal(grants().refresh_token, before.refresh + 1, 'one refresh token redemption')
    t.equal(grants().authorization_code, before.code, 'no new authorization code: no sign-in')
    t.equal(popups, 0, 'no window opened')
    t.equal(await page.textContent('#who'), SIGNED_IN)
    await callsTheApi(t, page)
  })

  await t.test('sign out: back on the page signed out, and the emulator\'s session is gone', async (t) => {
    const { context, page } = await openDemo(kit)
    t.teardown(() => context.close())
    await viaPopup(kit, page, '#sign-in-popup', ALICE)
    await page.waitForSelector(`#who:text("${SIGNED_IN}")`)
    await page.click('#sign-out')
    await page.waitForURL((url) => url.origin === kit.stack.spaUrl && url.pathname === '/', { waitUntil: 'load' })
    await page.waitForSelector('body[data-ready="true"]')
    t.equal(await page.textContent('#who'), 'Not signed in')
    await page.click('#sso-silent')
    await page.waitForSelector('#error:not(:empty)')
    t.match(await page.textContent('#error'), /^login_required: .*AADSTS50058/, 'ssoSilent finds no session to use')
    t.equal(await page.textContent('#who'), 'Not signed in')
  })

  await t.test('a browser that does not trust the emulator\'s certificate: the page says what to do', async (t) => {
    // Trusts the SPA's server (its own certificate) but not the emulator's, as after accepting one warning.
    const browser = await launchChromium([kit.stack.spaUrl])
    t.teardown(() => browser.close())
    const page = await browser.newPage()
    await page.goto(`${kit.stack.spaUrl}/`)
    await page.waitForSelector('#trust-problem:not([hidden])')
    const advice = await page.textContent('#trust-problem') ?? ''
    t.match(advice, `cannot fetch the sign-in metadata from ${kit.stack.emulator.url}/${DEV_IDS.tenantId}`)
    t.match(advice, `open ${kit.stack.emulator.url}/${DEV_IDS.tenantId}/v2.0/.well-known/openid-configuration once in this browser and accept the certificate`)
    t.match(advice, `import the emulator's CA certificate ${kit.stack.emulator.caFile}`)
    t.ok(await page.isDisabled('#sign-in-redirect'), 'nothing to click that could only fail')
  })
})
