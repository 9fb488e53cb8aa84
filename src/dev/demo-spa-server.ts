import { readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { parseArgs } from 'node:util'
import Fastify, { type FastifyInstance } from 'fastify'
import { listenOrExplain } from '../net/listen'

/** What the page reads from /config.json: where to sign in, what to call, what to tell the user. */
export interface DemoSpaConfig {
  /** e.g. https://127.0.0.1:8443/<tenant id>; MSAL.js accepts only https authorities. */
  authority: string
  /** Hosts MSAL.js may use without instance discovery (the emulator is not a Microsoft cloud). */
  knownAuthorities: string[]
  clientId: string
  /** What the SPA asks for: the gateway's scope. */
  scopes: string[]
  gatewayUrl: string
  /** The buttons: a label, the gateway path, what the route demonstrates. */
  calls: Array<{ id: string, label: string, path: string, explains: string }>
  /** The emulator's control API (CAE revocation button); absent against a real tenant. */
  controlApi?: { url: string, tenantId: string }
  /** What the untrusted-certificate advice names: the URL to open once, the CA file to import. */
  trust?: { openUrl: string, caFile: string }
  /** Shown on the page as the account to use. */
  hint?: string
}

/** The files the page is made of, by URL path: the folder's own, and msal-browser's published bundles. */
const MSAL_LIB = dirname(require.resolve('@azure/msal-browser'))
const PAGE_DIR = join(__dirname, 'demo-spa')
const FILES: Record<string, { file: string, type: string }> = {
  '/': { file: join(PAGE_DIR, 'index.html'), type: 'text/html; charset=utf-8' },
  '/index.html': { file: join(PAGE_DIR, 'index.html'), type: 'text/html; charset=utf-8' },
  '/redirect.html': { file: join(PAGE_DIR, 'redirect.html'), type: 'text/html; charset=utf-8' },
  '/consent.html': { file: join(PAGE_DIR, 'consent.html'), type: 'text/html; charset=utf-8' },
  '/app.js': { file: join(PAGE_DIR, 'app.js'), type: 'text/javascript; charset=utf-8' },
  '/challenges.js': { file: join(PAGE_DIR, 'challenges.js'), type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: join(PAGE_DIR, 'style.css'), type: 'text/css; charset=utf-8' },
  '/msal/msal-browser.js': { file: join(MSAL_LIB, 'msal-browser.js'), type: 'text/javascript; charset=utf-8' },
  '/msal/msal-redirect-bridge.js': { file: join(MSAL_LIB, 'redirect-bridge', 'msal-redirect-bridge.js'), type: 'text/javascript; charset=utf-8' }
}

export interface DemoSpaOptions {
  config: DemoSpaConfig
  /** PEM certificate and key; without them the page is served over plain http (localhost only, e.g. against a real tenant). */
  tls?: { cert: string, key: string }
}

/** The demo SPA's static server: a fixed list of files and the generated /config.json, nothing else. */
export function buildDemoSpaServer (options: DemoSpaOptions): FastifyInstance {
  const app = Fastify({ logger: false, forceCloseConnections: true, ...(options.tls === undefined ? {} : { https: options.tls }) })
  app.addHook('onSend', async (_request, reply) => {
    reply.header('cache-control', 'no-store')
    reply.header('x-content-type-options', 'nosniff')
  })
  app.get('/config.json', async () => options.config)
  app.get('/favicon.ico', async (_request, reply) => await reply.code(204).send())
  for (const [path, { file, type }] of Object.entries(FILES)) {
    app.get(path, async (_request, reply) => await reply.type(type).send(await readFile(file)))
  }
  return app
}

const REQUIRED: Array<keyof DemoSpaConfig> = ['authority', 'knownAuthorities', 'clientId', 'scopes', 'gatewayUrl', 'calls']

/**
 * The page alone, against the tenant a config file names (no emulator): served over plain http on
 * localhost, which browsers treat as a secure context and Entra accepts as an SPA redirect URI.
 * Answers the URL it listens on.
 */
export async function serveDemoSpa (args: string[]): Promise<{ url: string, close: () => Promise<void> }> {
  const { values, positionals } = parseArgs({ args, options: { port: { type: 'string' } }, allowPositionals: true, strict: true })
  const file = positionals[0]
  if (file === undefined) throw new Error('usage: demo-spa-server CONFIG.json [--port 8444]')
  const config = JSON.parse(await readFile(file, 'utf8')) as DemoSpaConfig
  const missing = REQUIRED.filter((key) => config[key] === undefined)
  if (missing.length > 0) throw new Error(`${file} lacks ${missing.join(', ')}`)
  const app = buildDemoSpaServer({ config })
  const wanted = Number(values.port ?? 8444)
  try {
    await listenOrExplain(() => app.listen({ host: 'localhost', port: wanted }), `localhost:${wanted}`)
  } catch (err) {
    await app.close()
    throw err
  }
  const { port } = app.server.address() as { port: number }
  return { url: `http://localhost:${port}`, close: async () => { await app.close() } }
}

if (require.main === module) {
  serveDemoSpa(process.argv.slice(2)).then(({ url }) => {
    console.log(`demo SPA: open ${url}/ (register ${url}/redirect.html as an SPA redirect URI; ${url}/consent.html as a web redirect URI of the gateway's app)`)
  }, (err: Error) => {
    console.error(err.message)
    process.exitCode = 1
  })
}
