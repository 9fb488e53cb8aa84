import type { EntraError } from '../entra-errors'

/**
 * The sign-in pages: plain HTML forms, one step each, with the element names of Microsoft's own
 * sign-in page (loginfmt, passwd, otc, #idSIButton9, #idBtn_Back, #idSubmit_SAOTCC_Continue) so
 * scripts written for Entra drive them unchanged. No JavaScript, no external assets.
 */

export interface Page {
  status: number
  html: string
  /** form_post alone needs its one inline script (the auto-submit). */
  script?: boolean
}

const STYLE = 'body{font-family:system-ui,sans-serif;background:#f2f2f2;margin:0}main{max-width:440px;margin:48px auto;background:#fff;padding:44px;box-shadow:0 2px 6px rgba(0,0,0,.2)}' +
  'h1{font-size:1.5rem;font-weight:600;margin:0 0 16px}input[type=text],input[type=password],input[type=email]{width:100%;box-sizing:border-box;padding:6px 0;border:0;border-bottom:1px solid #666;font-size:1rem;margin:8px 0 16px}' +
  '.buttons{text-align:right}input[type=submit]{min-width:108px;padding:6px 12px;margin-left:8px;border:0;background:#0067b8;color:#fff;font-size:1rem}input.secondary{background:#ccc;color:#000}' +
  '.error{color:#e81123}.code{font-family:monospace;font-size:.85rem;color:#555;white-space:pre-wrap}ul{padding-left:20px}'

export function escapeHtml (text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c)
}

function layout (title: string, body: string, status = 200): Page {
  return {
    status,
    html: `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${escapeHtml(title)}</title><style>${STYLE}</style></head>` +
      `<body><main>${body}</main></body></html>`
  }
}

/** A form posting back to the sign-in flow `ctx` names. */
function form (action: string, ctx: string, inner: string): string {
  return `<form method="post" action="${escapeHtml(action)}" autocomplete="off"><input type="hidden" name="ctx" value="${escapeHtml(ctx)}">${inner}</form>`
}

const errorLine = (message: string | undefined): string =>
  message === undefined ? '' : `<p class="error" id="usernameError" role="alert">${escapeHtml(message)}</p>`

export interface StepPage { action: string, ctx: string, appName: string }

export function accountPage (step: StepPage, prefill: string, error?: string, cancellable = false): Page {
  return layout('Sign in to your account', `<h1>Sign in</h1><p>to continue to ${escapeHtml(step.appName)}</p>${errorLine(error)}` + form(step.action, step.ctx,
    `<input type="email" name="loginfmt" id="i0116" value="${escapeHtml(prefill)}" placeholder="Email, phone, or Skype" aria-label="Enter your email, phone, or Skype.">` +
    `<div class="buttons">${cancellable ? '<input type="submit" id="idBtn_Back" name="cancel" value="Back" class="secondary">' : ''}<input type="submit" id="idSIButton9" name="next" value="Next"></div>`))
}

export function passwordPage (step: StepPage, username: string, error?: string): Page {
  return layout('Sign in to your account', `<p>${escapeHtml(username)}</p><h1>Enter password</h1>${errorLine(error)}` + form(step.action, step.ctx,
    '<input type="password" name="passwd" id="i0118" placeholder="Password" aria-label="Enter the password">' +
    '<div class="buttons"><input type="submit" id="idSIButton9" name="signin" value="Sign in"></div>'))
}

export function secondFactorPage (step: StepPage, error?: string): Page {
  return layout('Sign in to your account', `<h1>Enter code</h1><p>Enter the code from your authenticator app.</p>${errorLine(error)}` + form(step.action, step.ctx,
    '<input type="text" name="otc" id="idTxtBx_SAOTCC_OTC" inputmode="numeric" placeholder="Code" aria-label="Code">' +
    '<div class="buttons"><input type="submit" id="idSubmit_SAOTCC_Continue" name="verify" value="Verify"></div>'))
}

export function staySignedInPage (step: StepPage): Page {
  return layout('Sign in to your account', '<h1>Stay signed in?</h1><p>Do this to reduce the number of times you are asked to sign in.</p>' + form(step.action, step.ctx,
    '<div class="buttons"><input type="submit" id="idBtn_Back" name="kmsi" value="No" class="secondary"><input type="submit" id="idSIButton9" name="kmsi" value="Yes"></div>'))
}

export function consentPage (step: StepPage, scopes: string[]): Page {
  return layout('Permissions requested', `<h1>Permissions requested</h1><p>${escapeHtml(step.appName)} would like to:</p>` +
    `<ul>${scopes.map((s) => `<li>${escapeHtml(s)}</li>`).join('')}</ul>` + form(step.action, step.ctx,
      '<div class="buttons"><input type="submit" id="idBtn_Back" name="consent" value="Cancel" class="secondary"><input type="submit" id="idSIButton9" name="consent" value="Accept"></div>'))
}

/** Scopes only an admin may grant: no accept button, only the way back (Entra's "Need admin approval"). */
export function adminApprovalPage (step: StepPage, scopes: string[], error: EntraError): Page {
  return layout('Need admin approval', `<h1>Need admin approval</h1><p>${escapeHtml(step.appName)} needs permission to access resources in your organization that only an admin can grant. Please ask an admin to grant permission to this app before you can use it.</p>` +
    `<ul>${scopes.map((s) => `<li>${escapeHtml(s)}</li>`).join('')}</ul><p class="code" id="errorMessage">AADSTS${error.code}: ${escapeHtml(error.description)}</p>` + form(step.action, step.ctx,
      '<div class="buttons"><input type="submit" id="idBtn_Back" name="back" value="Return to the application without granting consent" class="secondary"></div>'))
}

export function deviceCodePage (action: string, error?: string): Page {
  return layout('Enter code', `<h1>Enter code</h1><p>Enter the code displayed on your app or device.</p>${errorLine(error)}` +
    `<form method="post" action="${escapeHtml(action)}" autocomplete="off"><input type="text" name="otc" id="otc" placeholder="Code" aria-label="Code">` +
    '<div class="buttons"><input type="submit" id="idSIButton9" name="next" value="Next"></div></form>')
}

export function deviceDonePage (appName: string, approved: boolean): Page {
  return layout(approved ? 'Signed in' : 'Sign-in cancelled', approved
    ? `<h1>You have signed in</h1><p>You have signed in to the ${escapeHtml(appName)} application on your device. You may now close this window.</p>`
    : `<h1>Sign-in cancelled</h1><p>You didn't sign in to ${escapeHtml(appName)}. You may now close this window.</p>`)
}

export function signedOutPage (): Page {
  return layout('Signed out', '<h1>You signed out of your account</h1><p>It\'s a good idea to close all browser windows.</p>')
}

/** Entra's "Sorry, but we're having trouble signing you in." with the AADSTS line. */
export function errorPage (error: EntraError, correlationId: string): Page {
  return layout('Sign in to your account', '<h1>Sign in</h1><p>Sorry, but we\'re having trouble signing you in.</p>' +
    `<p class="code" id="errorMessage">AADSTS${error.code}: ${escapeHtml(error.description)}</p><p class="code">Correlation ID: ${escapeHtml(correlationId)}</p>`, error.status)
}

/** response_mode=form_post: the answer as hidden fields, submitted on load (a button without JavaScript). */
export function formPostPage (redirectUri: string, fields: Record<string, string>): Page {
  const inputs = Object.entries(fields).map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`).join('')
  return {
    status: 200,
    script: true,
    html: '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Working...</title></head><body>' +
      `<form method="POST" name="hiddenform" action="${escapeHtml(redirectUri)}">${inputs}<noscript><p>Script is disabled. Click Submit to continue.</p><input type="submit" value="Submit"></noscript></form>` +
      '<script>document.forms[0].submit()</script></body></html>'
  }
}
