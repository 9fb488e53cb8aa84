import { createHash } from 'node:crypto'
import diagnostics from 'node:diagnostics_channel'
import { existsSync, mkdtempSync } from 'node:fs'
import type { IncomingMessage, Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect } from 'node:tls'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'
import { startDevStack, type DevStack } from '../../src/dev/stack'
import { DEMO_IDS } from '../../src/dev/demo-seed'
import { DEV_IDS } from '../../src/emulator'

/** Debian's Chromium; `.ci/run` installs it. Playwright never downloads a browser here. */
export const CHROMIUM = '/usr/bin/chromium'

/**
 * Whether the browser suite can run: in CI (env CI set) a missing Chromium is a failure, on a
 * laptop a skip whose reason tap prints.
 */
export function chromiumUnavailable (): string | false {
  if (existsSync(CHROMIUM)) return false
  const reason = `Chromium is not installed at ${CHROMIUM} (apt-get install chromium): the browser tests are skipped`
  if (process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false') {
    throw new Error(`${reason.split(':')[0]}; in CI the browser tests must run (.ci/run installs it)`)
  }
  console.error(`# ${reason}`)
  return reason
}

export const CHROMIUM_FLAGS = ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']

/** Base64 SHA-256 of the server certificate's public key (SPKI): what --ignore-certificate-errors-spki-list takes. */
export async function spkiHash (url: string): Promise<string> {
  const { hostname, port } = new URL(url)
  return await new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port), servername: hostname === '127.0.0.1' ? undefined : hostname, rejectUnauthorized: false }, () => {
      const spki = socket.getPeerX509Certificate()?.publicKey.export({ type: 'spki', format: 'der' })
      socket.end()
      if (spki === undefined) reject(new Error(`no certificate from ${url}`))
      else resolve(createHash('sha256').update(spki).digest('base64'))
    })
    socket.setTimeout(5_000, () => { socket.destroy(new Error(`no TLS handshake with ${url} within 5 s`)) })
    socket.on('error', reject)
  })
}

/**
 * Headless Chromium with a fresh profile (playwright makes a new user data dir per launch) that
 * trusts exactly the servers named: the certificates' keys go in --ignore-certificate-errors-spki-list,
 * so no certificate check is switched off for anything else.
 */
export async function launchChromium (trustedUrls: string[]): Promise<Browser> {
  const hashes = await Promise.all(trustedUrls.map(spkiHash))
  return await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 60_000,
    args: [...CHROMIUM_FLAGS, `--ignore-certificate-errors-spki-list=${hashes.join(',')}`]
  })
}

/** What the sample API received: each request's path and the claims of its bearer token. */
export interface ReceivedCall { path: string, claims: Record<string, unknown> }

/** Records the requests a server in this process receives (node's http.server.request.start channel). */
export function recordRequests (server: Server): { calls: ReceivedCall[], stop: () => void } {
  const calls: ReceivedCall[] = []
  const listener = (message: unknown): void => {
    const { request, server: receiving } = message as { request: IncomingMessage, server: Server }
    if (receiving !== server) return
    const token = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1]
    const payload = token?.split('.')[1]
    calls.push({ path: request.url ?? '', claims: payload === undefined ? {} : JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown> })
  }
  diagnostics.subscribe('http.server.request.start', listener)
  return { calls, stop: () => { diagnostics.unsubscribe('http.server.request.start', listener) } }
}

export interface BrowserKit {
  stack: DevStack
  browser: Browser
  sampleApi: { calls: ReceivedCall[] }
  close: () => Promise<void>
}

/** One dev stack (every port free) and one Chromium that trusts its emulator and SPA, for a whole test file. */
export async function startBrowserKit (): Promise<BrowserKit> {
  const stack = await startDevStack({ gatewayPort: 0, emulatorPort: 0, sampleApiPort: 0, mcpServerPort: 0, spaPort: 0, dataDir: mkdtempSync(join(tmpdir(), 'obo-browser-')) })
  try {
    const browser = await launchChromium([stack.emulator.url, stack.spaUrl])
    const recorder = recordRequests(stack.sampleApi.server)
    return {
      stack,
      browser,
      sampleApi: recorder,
      close: async () => {
        recorder.stop()
        await browser.close()
        await stack.close()
      }
    }
  } catch (err) {
    await stack.close()
    throw err
  }
}

export const ALICE = { username: DEV_IDS.alice.username, password: DEV_IDS.alice.password, mfaCode: DEMO_IDS.aliceMfaCode }

/** A fresh context (no cookies, no storage) with the demo page open and ready. */
export async function openDemo (kit: BrowserKit): Promise<{ context: BrowserContext, page: Page }> {
  const context = await kit.browser.newContext()
  context.setDefaultTimeout(20_000)
  const page = await context.newPage()
  await page.goto(`${kit.stack.spaUrl}/`)
  await page.waitForSelector('body[data-ready="true"]')
  return { context, page }
}

export interface SignInAnswers {
  username?: string
  password?: string
  mfaCode?: string
  consent?: boolean
}

/**
 * Answers the emulator's pages by their Entra element names until the window leaves the emulator
 * (a popup closes, a redirect lands back on the SPA). Answers the headings seen, in order.
 */
export async function answerSignIn (page: Page, emulatorUrl: string, answers: SignInAnswers): Promise<string[]> {
  const seen: string[] = []
  for (let i = 0; i < 8; i++) {
    try {
      await page.waitForURL((url) => url.origin === emulatorUrl || !url.href.startsWith('about:'), { timeout: 20_000 })
      if (!page.url().startsWith(emulatorUrl)) return seen
      await page.waitForSelector('h1')
    } catch (err) {
      if (page.isClosed()) return seen
      throw err
    }
    const heading = (await page.textContent('h1'))?.trim() ?? ''
    seen.push(heading)
    if (await page.$('input[name=otc]') !== null) {
      await page.fill('input[name=otc]', answers.mfaCode ?? '')
      await submit(page, '#idSubmit_SAOTCC_Continue')
    } else if (await page.$('input[name=passwd]') !== null) {
      await page.fill('input[name=passwd]', answers.password ?? '')
      await submit(page, '#idSIButton9')
    } else if (await page.$('input[name=loginfmt]') !== null) {
      await page.fill('input[name=loginfmt]', answers.username ?? '')
      await submit(page, '#idSIButton9')
    } else if (heading === 'Stay signed in?') {
      await submit(page, '#idSIButton9')
    } else if (heading === 'Permissions requested') {
      await submit(page, answers.consent === false ? '#idBtn_Back' : '#idSIButton9')
    } else {
      throw new Error(`an emulator page this driver does not know: ${heading}: ${(await page.textContent('body')) ?? ''}`)
    }
  }
  throw new Error(`the sign-in did not end after these pages: ${seen.join(', ')}`)
}

async function submit (page: Page, selector: string): Promise<void> {
  // The last page of a popup closes it as the answer arrives; the click may outlive its page.
  await Promise.all([page.waitForEvent('framenavigated').catch(() => undefined), page.click(selector, { noWaitAfter: true })])
}

/** The steps the page lists, as shown. */
export async function steps (page: Page): Promise<string[]> {
  return await page.$$eval('#steps li', (items) => items.map((item) => item.textContent ?? ''))
}

/** Clicks a button that opens a sign-in popup and answers the popup's pages. */
export async function viaPopup (kit: BrowserKit, page: Page, selector: string, answers: SignInAnswers): Promise<string[]> {
  const [popup] = await Promise.all([page.waitForEvent('popup'), page.click(selector)])
  return await answerSignIn(popup, kit.stack.emulator.url, answers)
}

/** Waits for the page's answer to a call and returns what it shows. */
export async function shownAnswer (page: Page): Promise<{ status: string, claims: Record<string, string>, error: string }> {
  await page.waitForFunction("document.getElementById('status').textContent !== '' || document.getElementById('error').textContent !== ''")
  const claims: Record<string, string> = {}
  for (const claim of ['aud', 'scp', 'oid', 'azp', 'amr', 'acrs']) claims[claim] = (await page.textContent(`#claim-${claim}`)) ?? ''
  return { status: (await page.textContent('#status')) ?? '', claims, error: (await page.textContent('#error')) ?? '' }
}
