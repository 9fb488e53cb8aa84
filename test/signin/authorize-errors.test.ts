import t from 'tap'
import { request } from 'undici'
import { DEV_IDS, defaultSeed, startEmulator, type EmulatorSeed, type RunningEmulator } from '../../src/emulator'
import { pkce } from '../helpers/interactive'
import { MsalKit, jwtClaims } from '../helpers/msal-clients'
import { SignInDriver } from '../helpers/sign-in-driver'

const GATEWAY_SCOPE = `${DEV_IDS.gateway.identifierUri}/${DEV_IDS.gateway.scope}`
const ITEMS_READ = `${DEV_IDS.sampleApi.identifierUri}/Items.Read`
const CLIENT = DEV_IDS.devClient.clientId
const REDIRECT = 'http://localhost:53125'
const ALICE = { username: DEV_IDS.alice.username, password: DEV_IDS.alice.password }

let now = Date.now()
let emulator: RunningEmulator
let kit: MsalKit

function seed (): EmulatorSeed {
  const home = defaultSeed.tenants[0]!
  // Consent is asked for the sample API only: the gateway's scope is admin-consented for everyone.
  return { ...defaultSeed, tenants: [{ ...home, enforceConsent: true, consents: [{ clientId: CLIENT, resource: DEV_IDS.gateway.clientId, scopes: [DEV_IDS.gateway.scope] }] }] }
}

t.before(async () => {
  emulator = await startEmulator({ seed: seed(), clock: () => now })
  kit = new MsalKit(emulator)
})
t.teardown(async () => {
  await kit.close()
  await emulator.close()
})

function authorizeUrl (params: Record<string, string>, extra = ''): string {
  const { challenge } = pkce()
  const query = new URLSearchParams({ client_id: CLIENT, response_type: 'code', redirect_uri: REDIRECT, scope: `${GATEWAY_SCOPE} openid offline_access`, code_challenge: challenge, code_challenge_method: 'S256', state: 's1', ...params })
  for (const [name, value] of Object.entries(params)) if (value === '') query.delete(name)
  return `${emulator.url}/${DEV_IDS.tenantId}/oauth2/v2.0/authorize?${query.toString()}${extra}`
}

function redirected (location: string | undefined): URLSearchParams {
  const url = new URL(location ?? 'https://missing.invalid/')
  return url.hash === '' ? url.searchParams : new URLSearchParams(url.hash.slice(1))
}

async function token (form: Record<string, string>, headers: Record<string, string> = {}): Promise<{ status: number, body: Record<string, unknown> }> {
  const res = await request(`${emulator.url}/${DEV_IDS.tenantId}/oauth2/v2.0/token`, { method: 'POST', dispatcher: kit.agent, headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(form).toString() })
  return { status: res.statusCode, body: await res.body.json() as Record<string, unknown> }
}

t.test('a bad client or redirect URI is an error page, never a redirect', async (t) => {
  const driver = new SignInDriver(kit.agent, emulator.url)
  for (const [params, code, extra] of [
    [{ client_id: '' }, 900144, ''],
    [{ client_id: '00000000-0000-4000-8000-000000000000' }, 700016, ''],
    [{ redirect_uri: 'https://evil.example/steal' }, 50011, ''],
    [{ redirect_uri: '' }, 900144, ''],
    [{}, 90100, `&redirect_uri=${encodeURIComponent('https://evil.example/')}`],
    [{ state: 'x'.repeat(5000) }, 90015, '']
  ] as const) {
    const page = await driver.get(authorizeUrl(params, extra))
    t.equal(page.location, undefined, `AADSTS${code}: no redirect`)
    t.equal(page.status, 400)
    t.match(page.body, `AADSTS${code}`)
    t.match(page.headers['content-type'], 'text/html')
  }
  const tenant = await driver.get(authorizeUrl({}).replace(DEV_IDS.tenantId, 'no-such-tenant'))
  t.match(tenant, { status: 400, body: /AADSTS90002/ })
})

t.test('the other errors go back to the redirect URI with error, AADSTS description, error_uri and state', async (t) => {
  const driver = new SignInDriver(kit.agent, emulator.url)
  for (const [params, error, code] of [
    [{ response_type: '' }, 'invalid_request', 900144],
    [{ response_type: 'banana' }, 'unsupported_response_type', 70005],
    [{ response_type: 'token' }, 'unsupported_response_type', 700054],
    [{ scope: '' }, 'invalid_request', 900144],
    [{ scope: 'api://nope/x' }, 'invalid_scope', 70011],
    [{ prompt: 'sometimes' }, 'invalid_request', 90100],
    [{ code_challenge: 'short' }, 'invalid_request', 501491],
    [{ claims: '{not json' }, 'invalid_request', 90100],
    [{ response_mode: 'carrier_pigeon' }, 'invalid_request', 70007]
  ] as const) {
    const page = await driver.get(authorizeUrl(params))
    t.equal(page.status, 302, `${error} AADSTS${code}`)
    t.ok(page.location?.startsWith(`${REDIRECT}/`))
    const back = redirected(page.location)
    t.equal(back.get('error'), error)
    t.match(back.get('error_description'), new RegExp(`^AADSTS${code}: `))
    t.equal(back.get('error_uri'), `https://login.microsoftonline.com/error?code=${code}`)
    t.equal(back.get('state'), 's1')
  }
  const duplicate = await driver.get(authorizeUrl({}, '&state=again'))
  t.match(redirected(duplicate.location).get('error_description'), /^AADSTS90100: .*'state'/)
  const fragment = await driver.get(authorizeUrl({ response_mode: 'fragment', scope: 'api://nope/x' }))
  t.equal(redirected(fragment.location).get('error'), 'invalid_scope', 'fragment mode answers in the fragment')
})

t.test('spa clients need S256 PKCE, and their codes are redeemable only cross-origin', async (t) => {
  const driver = new SignInDriver(kit.agent, emulator.url)
  const spa = { client_id: DEV_IDS.devSpa.clientId, redirect_uri: DEV_IDS.devSpa.redirectUris[0] }
  const plain = await driver.get(authorizeUrl({ ...spa, code_challenge_method: 'plain' }))
  t.match(redirected(plain.location).get('error_description'), /^AADSTS9002325: /)
  const none = await driver.get(authorizeUrl({ ...spa, code_challenge: '', code_challenge_method: '' }))
  t.match(redirected(none.location).get('error_description'), /^AADSTS9002325: /)

  const { verifier, challenge } = pkce()
  const answer = await driver.signIn(authorizeUrl({ ...spa, code_challenge: challenge }), ALICE)
  const code = redirected(answer.location).get('code') ?? ''
  const form = { grant_type: 'authorization_code', client_id: spa.client_id, code, redirect_uri: spa.redirect_uri, code_verifier: verifier, scope: GATEWAY_SCOPE }
  t.match(await token(form), { status: 400, body: { error: 'invalid_request', error_codes: [9002327] } })
  t.match(await token({ ...form, code_verifier: pkce().verifier }, { origin: 'http://localhost:8080' }), { status: 400, body: { error: 'invalid_grant', error_codes: [501481] } })
  t.match(await token(form, { origin: 'http://localhost:8080' }), { status: 200, body: { token_type: 'Bearer', access_token: String } })
})

t.test('code redemption checks: another client, redirect URI, verifier, 10-minute life', async (t) => {
  const driver = new SignInDriver(kit.agent, emulator.url)
  const { verifier, challenge } = pkce()
  const first = await driver.signIn(authorizeUrl({ code_challenge: challenge }), ALICE)
  const code = redirected(first.location).get('code') ?? ''
  const form = { grant_type: 'authorization_code', client_id: CLIENT, code, redirect_uri: REDIRECT, code_verifier: verifier, scope: GATEWAY_SCOPE }
  t.match(await token({ ...form, client_id: DEV_IDS.gateway.clientId, client_secret: DEV_IDS.gateway.secret }), { status: 400, body: { error: 'invalid_grant', error_codes: [70000] } }, 'a code redeemed by another client')
  t.match(await token({ ...form, redirect_uri: 'http://localhost:1/' }), { status: 400, body: { error: 'invalid_grant', error_codes: [50011] } })
  t.match(await token({ ...form, code_verifier: '' }), { status: 400, body: { error: 'invalid_request', error_codes: [900144] } })
  t.match(await token({ ...form, code: 'forged' }), { status: 400, body: { error: 'invalid_grant', error_codes: [9002313] } })
  t.match(await token(form, { origin: 'http://localhost:8080' }), { status: 400, body: { error: 'invalid_request', error_codes: [9002326] } }, 'a desktop code is never redeemed cross-origin')
  const second = await driver.signIn(authorizeUrl({ code_challenge: challenge }))
  now += 10 * 60 * 1000
  t.match(await token({ ...form, code: redirected(second.location).get('code') ?? '' }), { status: 400, body: { error: 'invalid_grant', error_codes: [70008] } })
  now = Date.now()
  const ok = await token({ ...form, scope: `${GATEWAY_SCOPE} openid` })
  t.equal(ok.status, 200, 'the first code was still good: failed attempts do not use it up')
  t.match(jwtClaims(ok.body.id_token as string), { aud: CLIENT, auth_time: Number })
})

t.test('the session cookie: prompt=none succeeds silently or fails as Entra does', async (t) => {
  const driver = new SignInDriver(kit.agent, emulator.url)
  const none = await driver.get(authorizeUrl({ prompt: 'none' }))
  t.match(Object.fromEntries(redirected(none.location)), { error: 'login_required', state: 's1', error_description: /^AADSTS50058: / })

  await driver.signIn(authorizeUrl({}), ALICE)
  const cookie = driver.cookie('ESTSAUTH') ?? ''
  t.ok(cookie)
  const silent = await driver.get(authorizeUrl({ prompt: 'none' }))
  t.ok(redirected(silent.location).get('code'), 'a code without UI')
  const mismatch = await driver.get(authorizeUrl({ prompt: 'none', login_hint: DEV_IDS.bob.username }))
  t.equal(redirected(mismatch.location).get('error'), 'login_required')
  const consent = await driver.get(authorizeUrl({ prompt: 'none', scope: ITEMS_READ }))
  t.match(Object.fromEntries(redirected(consent.location)), { error: 'consent_required', error_description: /^AADSTS65001: / })
  const mfa = await driver.get(authorizeUrl({ prompt: 'none', claims: '{"access_token":{"acrs":{"essential":true,"value":"c1"}}}' }))
  t.match(Object.fromEntries(redirected(mfa.location)), { error: 'interaction_required', error_description: /^AADSTS50076: / })
  const login = await driver.get(authorizeUrl({ prompt: 'login' }))
  t.match(login.body, 'name="loginfmt"', 'prompt=login asks again despite the session')

  const forged = new SignInDriver(kit.agent, emulator.url)
  forged.setCookie('ESTSAUTH', `${cookie.split('.')[0] ?? ''}.AAAA`)
  t.equal(redirected((await forged.get(authorizeUrl({ prompt: 'none' }))).location).get('error'), 'login_required', 'a forged cookie is no session')

  const logout = await driver.get(`${emulator.url}/${DEV_IDS.tenantId}/oauth2/v2.0/logout?client_id=${CLIENT}&post_logout_redirect_uri=${encodeURIComponent('http://localhost')}&state=bye`)
  t.equal(logout.status, 302)
  t.equal(logout.location, 'http://localhost/?state=bye')
  const replayed = new SignInDriver(kit.agent, emulator.url)
  replayed.setCookie('ESTSAUTH', cookie)
  t.equal(redirected((await replayed.get(authorizeUrl({ prompt: 'none' }))).location).get('error'), 'login_required', 'a replayed cookie after logout is no session')
  const open = await driver.get(`${emulator.url}/${DEV_IDS.tenantId}/oauth2/v2.0/logout?client_id=${CLIENT}&post_logout_redirect_uri=${encodeURIComponent('https://evil.example/')}`)
  t.match(open, { status: 200, body: /You signed out/ }, 'an unregistered post_logout_redirect_uri gets the page, not a redirect')

  await driver.signIn(authorizeUrl({}), ALICE)
  emulator.sessions.revoke(DEV_IDS.tenantId, DEV_IDS.alice.objectId)
  t.equal(redirected((await driver.get(authorizeUrl({ prompt: 'none' }))).location).get('error'), 'login_required', 'a revocation ends the session')
})

t.test('pages: login_hint escaped, wrong password, second factor, consent accept and cancel', async (t) => {
  const driver = new SignInDriver(kit.agent, emulator.url)
  const hinted = await driver.get(authorizeUrl({ login_hint: '"><script>alert(1)</script>' }))
  t.notMatch(hinted.body, '<script>alert(1)</script>')
  t.match(hinted.body, '&quot;&gt;&lt;script&gt;')
  t.match(hinted.headers['content-security-policy'], "default-src 'none'")

  const wrong = await driver.signIn(authorizeUrl({}), { username: DEV_IDS.alice.username, password: 'nope' })
  t.match(wrong, { status: 200, body: /AADSTS50126/ })
  t.match(wrong.body, 'name="passwd"', 'stays on the password page')

  // dana: the seed's MFA policy on the gateway asks for her second factor.
  const mfaDriver = new SignInDriver(kit.agent, emulator.url)
  const dana = { username: DEV_IDS.dana.username, password: DEV_IDS.dana.password }
  const codePage = await mfaDriver.signIn(authorizeUrl({}), dana)
  t.match(codePage.body, 'id="idSubmit_SAOTCC_Continue"')
  const badCode = await mfaDriver.submit(codePage, { otc: '000000' }, 'idSubmit_SAOTCC_Continue')
  t.match(badCode.body, 'expected verification code')
  const { verifier, challenge } = pkce()
  const done = await mfaDriver.signIn(authorizeUrl({ code_challenge: challenge, claims: '{"access_token":{"acrs":{"essential":true,"value":"c1"}}}' }), { ...dana, otc: DEV_IDS.dana.mfaCode })
  const redeemed = await token({ grant_type: 'authorization_code', client_id: CLIENT, code: redirected(done.location).get('code') ?? '', redirect_uri: REDIRECT, code_verifier: verifier, scope: GATEWAY_SCOPE })
  t.match(jwtClaims(redeemed.body.access_token as string), { amr: ['pwd', 'mfa'], acrs: ['c1'], oid: DEV_IDS.dana.objectId })

  const consentDriver = new SignInDriver(kit.agent, emulator.url)
  const cancelled = await consentDriver.signIn(authorizeUrl({ scope: ITEMS_READ }), { ...ALICE, consent: 'cancel' })
  t.match(Object.fromEntries(redirected(cancelled.location)), { error: 'access_denied', error_description: /^AADSTS65004: /, state: 's1' })
  const accepted = await consentDriver.signIn(authorizeUrl({ scope: ITEMS_READ }), ALICE)
  t.ok(redirected(accepted.location).get('code'), 'accepting records the grant')
  t.ok(redirected((await consentDriver.get(authorizeUrl({ scope: ITEMS_READ, prompt: 'none' }))).location).get('code'), 'and prompt=none is fine afterwards')
})

t.test('consent model: OBO refuses ungranted scopes with AADSTS65001 until a grant exists', async (t) => {
  const driver = new SignInDriver(kit.agent, emulator.url)
  const { verifier, challenge } = pkce()
  const answer = await driver.signIn(authorizeUrl({ code_challenge: challenge }), { username: DEV_IDS.bob.username, password: DEV_IDS.bob.password })
  const redeemed = await token({ grant_type: 'authorization_code', client_id: CLIENT, code: redirected(answer.location).get('code') ?? '', redirect_uri: REDIRECT, code_verifier: verifier, scope: GATEWAY_SCOPE })
  const obo = (): Promise<{ status: number, body: Record<string, unknown> }> => token({
    grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
    requested_token_use: 'on_behalf_of',
    client_id: DEV_IDS.gateway.clientId,
    client_secret: DEV_IDS.gateway.secret,
    assertion: redeemed.body.access_token as string,
    scope: ITEMS_READ
  })
  t.match(await obo(), { status: 400, body: { error: 'invalid_grant', error_codes: [65001], suberror: 'consent_required' } })
  const id = emulator.consents.grant(DEV_IDS.tenantId, { clientId: DEV_IDS.gateway.clientId, resource: DEV_IDS.sampleApi.identifierUri, scopes: ['Items.Read'] })
  t.match(await obo(), { status: 200, body: { access_token: String } }, 'an admin grant (no userObjectId) covers bob')
  t.ok(emulator.consents.revoke(id))
  t.match(await obo(), { status: 400, body: { error_codes: [65001] } })
})
