// Calling an API behind obo-gateway from a SPA with @azure/msal-browser, and acting on what it passes back.
// The demo SPA runs this file; the README's "Handling challenges in a SPA" shows it (a test keeps the two equal).

/** The parameters of a `WWW-Authenticate: Bearer k="v", …` header (quoted or not), by lower-cased name. */
export function parseChallenge (header) {
  const params = {}
  for (const [, name, quoted, bare] of (header ?? '').matchAll(/([\w-]+)=(?:"([^"]*)"|([^\s,]+))/g)) {
    params[name.toLowerCase()] = quoted ?? bare
  }
  return params
}

/**
 * GET `url` with a token for `scopes`, answering the gateway's challenges once each:
 * - 401 `insufficient_claims` (MFA, conditional access, CAE revocation, auth-context step-up with
 *   `cc_type="authcontext"`): sign in again asking for the `claims` it names, then retry;
 * - 403 `proposedAction="consent"`: open its `consentUri` so the user consents, then retry.
 * `step(name, detail)` reports each step. Answers the last response.
 */
export async function callWithChallenges ({ msal, account, scopes, url, consentRedirectUri, step }) {
  const call = (token) => fetch(url, { headers: { authorization: `Bearer ${token}` } })
  let response = await call(await tokenFor(msal, account, scopes))
  const challenge = parseChallenge(response.headers.get('www-authenticate'))

  if (response.status === 401 && challenge.error === 'insufficient_claims' && challenge.claims) {
    step('challenge received', `401 insufficient_claims${challenge.cc_type ? `, cc_type=${challenge.cc_type}` : ''}`)
    const claims = atob(challenge.claims)
    step('claims requested', claims)
    // Interactive: the claims ask for something only the user can give (a second factor, a new sign-in).
    const result = await msal.acquireTokenPopup({ scopes, account, claims })
    step('re-sign-in', `new token for ${result.account.username}`)
    response = await call(result.accessToken)
    step('retry', `${response.status}`)
  } else if (response.status === 403 && challenge.proposedaction === 'consent') {
    step('challenge received', `403 insufficient_scope, proposedAction=consent, scope=${challenge.scope}`)
    await consent(challenge.consenturi, consentRedirectUri, account, step)
    response = await call(await tokenFor(msal, account, scopes))
    step('retry', `${response.status}`)
  }
  return response
}

/** The cached token, renewed with the refresh token when needed; a sign-in only when MSAL says one is required. */
async function tokenFor (msal, account, scopes) {
  try {
    return (await msal.acquireTokenSilent({ scopes, account })).accessToken
  } catch (err) {
    if (err?.name !== 'InteractionRequiredAuthError') throw err
    return (await msal.acquireTokenPopup({ scopes, account })).accessToken
  }
}

/**
 * The consent URI names the gateway (it is the gateway's permission the user grants); it lands on
 * `redirectUri`, a page of ours registered on the gateway's app, which reports back and closes.
 */
function consent (consentUri, redirectUri, account, step) {
  const url = new URL(consentUri)
  url.searchParams.set('redirect_uri', redirectUri)
  url.searchParams.set('login_hint', account.username)
  step('consent requested', url.searchParams.get('scope'))
  const channel = new BroadcastChannel('obo-demo-consent')
  let timer
  const answered = new Promise((resolve, reject) => {
    channel.onmessage = ({ data }) => data.error ? reject(new Error(`${data.error}: ${data.description}`)) : resolve()
    timer = setTimeout(() => reject(new Error('no answer from the consent window within 5 minutes')), 5 * 60_000)
    if (window.open(url, 'consent', 'popup,width=520,height=640') === null) reject(new Error('the browser blocked the consent window; allow popups for this page'))
  })
  return answered
    .then(() => step('consent given', 'the consent window closed'))
    .finally(() => { clearTimeout(timer); channel.close() })
}
