import { request, type Dispatcher } from 'undici'

/**
 * A browser stand-in for the emulator's sign-in pages that knows only what a script written for
 * Microsoft's sign-in page knows: the element names (loginfmt, passwd, otc, #idSIButton9,
 * #idBtn_Back, #idSubmit_SAOTCC_Continue). It keeps cookies, follows the emulator's pages and stops
 * at the first answer that leaves the emulator (the 302 to the client, or a form_post page).
 */

export interface FetchedPage {
  url: string
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
  /** The Location of a redirect. */
  location?: string
}

export interface Form {
  action: string
  method: string
  /** Named inputs with their values (hidden fields prefilled). */
  fields: Record<string, string>
  /** Submit buttons by id: the name and value they add when clicked. */
  buttons: Record<string, { name?: string, value: string }>
}

export interface Credentials {
  username?: string
  password?: string
  otc?: string
  /** "Stay signed in?": true clicks #idSIButton9 (Yes), false #idBtn_Back (No). Default yes. */
  staySignedIn?: boolean
  /** Consent page: accept (#idSIButton9) or cancel (#idBtn_Back). Default accept. */
  consent?: 'accept' | 'cancel'
}

const attr = (tag: string, name: string): string | undefined => {
  const match = new RegExp(`\\s${name}="([^"]*)"`, 'i').exec(tag)
  return match?.[1] === undefined ? undefined : unescapeHtml(match[1])
}

export function unescapeHtml (text: string): string {
  return text.replace(/&(amp|lt|gt|quot|#39);/g, (_m, e: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'" })[e] ?? '')
}

export function parseForm (html: string): Form | undefined {
  const form = /<form\b([^>]*)>([\s\S]*?)<\/form>/i.exec(html)
  if (form === null) return undefined
  const fields: Record<string, string> = {}
  const buttons: Form['buttons'] = {}
  for (const [tag] of (form[2] ?? '').matchAll(/<input\b[^>]*>/gi)) {
    const type = (attr(tag, 'type') ?? 'text').toLowerCase()
    const name = attr(tag, 'name')
    const value = attr(tag, 'value') ?? ''
    if (type === 'submit') {
      const id = attr(tag, 'id') ?? `submit${Object.keys(buttons).length}`
      buttons[id] = { ...(name === undefined ? {} : { name }), value }
    } else if (name !== undefined) {
      fields[name] = value
    }
  }
  return { action: attr(form[1] ?? '', 'action') ?? '', method: (attr(form[1] ?? '', 'method') ?? 'get').toLowerCase(), fields, buttons }
}

export class SignInDriver {
  private readonly cookies = new Map<string, string>()
  /** Every page the driver saw, in order (tests assert on them). */
  readonly visited: FetchedPage[] = []

  constructor (private readonly dispatcher: Dispatcher, private readonly origin: string) {}

  async get (url: string): Promise<FetchedPage> {
    return await this.fetch('GET', url)
  }

  /** Fills `values` into the page's form and clicks the button with `buttonId`. */
  async submit (page: FetchedPage, values: Record<string, string>, buttonId: string): Promise<FetchedPage> {
    const form = parseForm(page.body)
    if (form === undefined) throw new Error(`no form on the page from ${page.url}`)
    const button = form.buttons[buttonId]
    if (button === undefined) throw new Error(`no button #${buttonId} on the page from ${page.url}: ${Object.keys(form.buttons).join(', ')}`)
    const fields = { ...form.fields, ...values, ...(button.name === undefined ? {} : { [button.name]: button.value }) }
    return await this.fetch('POST', new URL(form.action, page.url).toString(), new URLSearchParams(fields).toString())
  }

  /**
   * Walks the pages from `url` until the emulator answers the client: a redirect off the emulator
   * or a page without a sign-in form (form_post, the device "you have signed in" page, an error).
   */
  async signIn (url: string, credentials: Credentials = {}): Promise<FetchedPage> {
    return await this.continue(await this.get(url), credentials)
  }

  /** signIn() from a page already fetched (e.g. after the device code page). */
  async continue (start: FetchedPage, credentials: Credentials = {}): Promise<FetchedPage> {
    let page = start
    for (let steps = 0; steps < 12; steps++) {
      if (page.location !== undefined) {
        if (!page.location.startsWith(this.origin) && !page.location.startsWith('/')) return page
        page = await this.get(new URL(page.location, page.url).toString())
        continue
      }
      const form = parseForm(page.body)
      if (form === undefined || (!form.action.includes('/login') && !form.action.includes('/deviceauth'))) return page
      if ('loginfmt' in form.fields) {
        page = await this.submit(page, { loginfmt: credentials.username ?? form.fields.loginfmt ?? '' }, 'idSIButton9')
      } else if ('passwd' in form.fields) {
        if (credentials.password === undefined) return page
        page = await this.submit(page, { passwd: credentials.password }, 'idSIButton9')
        if (parseForm(page.body)?.fields.passwd !== undefined) return page
      } else if ('otc' in form.fields && form.buttons.idSubmit_SAOTCC_Continue !== undefined) {
        if (credentials.otc === undefined) return page
        page = await this.submit(page, { otc: credentials.otc }, 'idSubmit_SAOTCC_Continue')
        if (parseForm(page.body)?.buttons.idSubmit_SAOTCC_Continue !== undefined) return page
      } else if (page.body.includes('Stay signed in?')) {
        page = await this.submit(page, {}, credentials.staySignedIn === false ? 'idBtn_Back' : 'idSIButton9')
      } else if (page.body.includes('Permissions requested')) {
        page = await this.submit(page, {}, credentials.consent === 'cancel' ? 'idBtn_Back' : 'idSIButton9')
      } else {
        return page
      }
    }
    throw new Error('the sign-in did not finish within 12 steps')
  }

  cookie (name: string): string | undefined {
    return this.cookies.get(name)
  }

  setCookie (name: string, value: string): void {
    this.cookies.set(name, value)
  }

  forgetCookies (): void {
    this.cookies.clear()
  }

  private async fetch (method: 'GET' | 'POST', url: string, body?: string): Promise<FetchedPage> {
    const cookie = [...this.cookies].map(([n, v]) => `${n}=${v}`).join('; ')
    const res = await request(url, {
      method,
      dispatcher: this.dispatcher,
      headers: {
        ...(cookie === '' ? {} : { cookie }),
        ...(body === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded' })
      },
      ...(body === undefined ? {} : { body })
    })
    for (const line of [res.headers['set-cookie'] ?? []].flat()) {
      const [pair = '', ...attributes] = line.split(';')
      const eq = pair.indexOf('=')
      const name = pair.slice(0, eq).trim()
      if (attributes.some((a) => /^\s*max-age=0\s*$/i.test(a))) this.cookies.delete(name)
      else this.cookies.set(name, pair.slice(eq + 1).trim())
    }
    const location = res.headers.location
    const page: FetchedPage = {
      url,
      status: res.statusCode,
      headers: res.headers,
      body: await res.body.text(),
      ...(typeof location === 'string' ? { location: new URL(location, url).toString() } : {})
    }
    this.visited.push(page)
    return page
  }
}
