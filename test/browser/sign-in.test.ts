import t from 'tap'
import { ALICE, answerSignIn, chromiumUnavailable, openDemo, shownAnswer, startBrowserKit, steps, viaPopup, type BrowserKit } from '../helpers/browser'
import { DEV_IDS } from '../../src/emulator'

const skip = chromiumUnavailable()

t.test('demo SPA sign-in with real MSAL.js in Chromium', { skip }, async (t) => {
  const kit: BrowserKit = await startBrowserKit()
  t.teardown(() => kit.close())

  await t.test('sign in by redirect, then the sample API answers through the gateway', async (t) => {
    const { context, page } = await openDemo(kit)
    t.teardown(() => context.close())
    t.equal(await page.textContent('#who'), 'Not signed in')
    await page.click('#sign-in-redirect')
    const pages = await answerSignIn(page, kit.stack.emulator.url, ALICE)
    t.same(pages, ['Sign in', 'Enter password', 'Stay signed in?'])
    await page.waitForSelector('body[data-ready="true"]')
    t.equal(await page.textContent('#who'), `Signed in as ${DEV_IDS.alice.name} (${DEV_IDS.alice.username})`)
    await page.click('button[data-call=api]')
    const shown = await shownAnswer(page)
    t.equal(shown.status, 'HTTP 200 from the sample API')
    t.match(shown.claims, { aud: DEV_IDS.sampleApi.clientId, scp: 'Items.Read', oid: DEV_IDS.alice.objectId, azp: DEV_IDS.gateway.clientId })
    console.log(await steps(page))
  })
})
