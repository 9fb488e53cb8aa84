/* global msal */
// The demo page: sign-in buttons, one button per gateway route, and what came back. The challenge
// handling itself is challenges.js.
import { callWithChallenges } from './challenges.js'

const $ = (id) => document.getElementById(id)
const origin = window.location.origin
const CLAIMS = ['aud', 'scp', 'oid', 'azp', 'amr', 'acrs']

const config = await (await fetch('config.json')).json()
let pca

function step (name, detail) {
  const item = document.createElement('li')
  item.dataset.step = name
  item.textContent = detail === undefined ? name : `${name}: ${detail}`
  $('steps').append(item)
}

function clearResult () {
  $('steps').replaceChildren()
  for (const id of ['status', 'error', 'answer']) $(id).textContent = ''
  for (const claim of CLAIMS) $(`claim-${claim}`).textContent = ''
}

function showError (err) {
  $('error').textContent = err?.errorCode ? `${err.errorCode}: ${err.errorMessage ?? err.message}` : String(err?.message ?? err)
}

function account () {
  return pca.getActiveAccount() ?? pca.getAllAccounts()[0] ?? null
}

function showAccount () {
  const signedIn = account()
  $('who').textContent = signedIn === null ? 'Not signed in' : `Signed in as ${signedIn.name} (${signedIn.username})`
}

/** MSAL.js fetches the authority's metadata itself; when the browser refuses the certificate, all it reports is a network error. */
async function checkAuthority () {
  try {
    const response = await fetch(`${config.authority}/v2.0/.well-known/openid-configuration`)
    if (response.ok) return true
    problem('config-problem', `The authority ${config.authority} answered ${response.status} to its metadata request: check the authority in config.json.`)
  } catch {
    const trust = config.trust
    problem('trust-problem', trust === undefined
      ? `This browser cannot reach ${config.authority} over HTTPS (network error): is it up, and does this browser trust its certificate?`
      : `This browser cannot fetch the sign-in metadata from ${config.authority}: it does not trust the emulator's certificate. ` +
        `Either open ${trust.openUrl} once in this browser and accept the certificate (then reload this page), ` +
        `or import the emulator's CA certificate ${trust.caFile} into this browser's trusted authorities.`)
  }
  return false
}

function problem (id, text) {
  $(id).textContent = text
  $(id).hidden = false
  for (const button of document.querySelectorAll('button')) button.disabled = true
}

async function createMsal () {
  const next = await msal.createStandardPublicClientApplication({
    auth: {
      clientId: config.clientId,
      authority: config.authority,
      knownAuthorities: config.knownAuthorities,
      redirectUri: `${origin}/redirect.html`,
      postLogoutRedirectUri: `${origin}/`,
      // cp1: this client can answer claims challenges, so the gateway may pass them on (CAE, auth context).
      clientCapabilities: $('no-cp1').checked ? [] : ['cp1']
    },
    cache: { cacheLocation: 'sessionStorage' }
  })
  const redirected = await next.handleRedirectPromise()
  if (redirected !== null) next.setActiveAccount(redirected.account)
  return next
}

async function signedIn (result, how) {
  pca.setActiveAccount(result.account)
  showAccount()
  step('signed in', `${result.account.username} (${how})`)
}

async function revokeSessions (user) {
  const { url, tenantId } = config.controlApi
  const response = await fetch(`${url}/tenants/${tenantId}/users/${user.idTokenClaims.oid}/revoke-sessions`, { method: 'POST' })
  if (!response.ok) throw new Error(`the control API answered ${response.status} to revoke-sessions`)
  step('sessions revoked', `the emulator revoked ${user.username}'s sessions and refresh tokens (revocation time ${(await response.json()).revocationTime})`)
}

const CAPABILITY_ERRORS = {
  client_capability_required: 'this client did not declare cp1, so the gateway does not hand it an auth-context challenge it could not answer',
  claims_challenge_unsupported: 'the sample API sent a claims challenge (CAE), but this client did not declare cp1, so the gateway does not pass it on'
}

async function showAnswer (response) {
  const body = await response.json().catch(() => ({}))
  $('status').textContent = response.ok ? `HTTP ${response.status} from the sample API` : `HTTP ${response.status} from the gateway`
  $('answer').textContent = JSON.stringify(body, null, 2)
  if (response.ok) {
    for (const claim of CLAIMS) {
      const value = body.token?.[claim]
      $(`claim-${claim}`).textContent = value === undefined ? '(none)' : Array.isArray(value) ? value.join(' ') : String(value)
    }
  } else {
    $('error').textContent = `${body.error}: ${body.error_description}` + (CAPABILITY_ERRORS[body.error] ? ` (${CAPABILITY_ERRORS[body.error]})` : '')
  }
}

async function runCall (call) {
  const user = account()
  if (user === null) throw new Error('sign in first')
  step('call', `GET ${call.path} (${call.explains})`)
  if (call.id === 'cae') await revokeSessions(user)
  const response = await callWithChallenges({
    msal: pca,
    account: user,
    scopes: config.scopes,
    url: `${config.gatewayUrl}${call.path}`,
    consentRedirectUri: `${origin}/consent.html`,
    step
  })
  await showAnswer(response)
}

function onClick (button, action) {
  button.addEventListener('click', () => {
    clearResult()
    action().catch(showError).finally(showAccount)
  })
}

$('hint').textContent = config.hint === undefined ? '' : `Sign in as ${config.hint}.`
if (config.controlApi === undefined) config.calls = config.calls.filter((call) => call.id !== 'cae')
for (const call of config.calls) {
  const button = document.createElement('button')
  button.type = 'button'
  button.dataset.call = call.id
  button.textContent = call.label
  button.title = call.explains
  onClick(button, () => runCall(call))
  $('calls').append(button)
}

if (await checkAuthority()) {
  pca = await createMsal()
  showAccount()
  onClick($('sign-in-redirect'), () => pca.loginRedirect({ scopes: config.scopes }))
  onClick($('sign-in-popup'), async () => signedIn(await pca.loginPopup({ scopes: config.scopes }), 'popup'))
  onClick($('sso-silent'), async () => signedIn(await pca.ssoSilent({ scopes: config.scopes }), 'ssoSilent: hidden iframe, the emulator\'s session cookie, no page shown'))
  onClick($('renew'), async () => {
    const user = account()
    if (user === null) throw new Error('sign in first')
    const result = await pca.acquireTokenSilent({ scopes: config.scopes, account: user })
    step('token', result.fromCache
      ? `from the cache, valid until ${result.expiresOn.toISOString()}`
      : `renewed silently with the refresh token (no sign-in page), valid until ${result.expiresOn.toISOString()}`)
  })
  onClick($('sign-out'), () => {
    const user = account()
    // id_token_hint tells Entra which app signs out, so it returns to the page instead of showing its own.
    return pca.logoutRedirect({ account: user, ...(user?.idToken ? { idTokenHint: user.idToken } : {}) })
  })
  $('no-cp1').addEventListener('change', () => {
    clearResult()
    const renew = async () => {
      pca = await createMsal()
      const user = account()
      if (user === null) return
      // The cached token says what the old client declared; a new one says what this one does.
      await pca.acquireTokenSilent({ scopes: config.scopes, account: user, forceRefresh: true })
      step('token renewed', $('no-cp1').checked ? 'without cp1 (no xms_cc claim)' : 'with cp1 (xms_cc: cp1)')
    }
    renew().catch(showError).finally(showAccount)
  })
  document.body.dataset.ready = 'true'
}
