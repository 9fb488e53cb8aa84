import type { FastifyInstance } from 'fastify'

/** A route browsers call cross-origin (MSAL.js reads metadata and keys, SPAs redeem codes). */
export interface BrowserRoute {
  method: 'GET' | 'POST'
  url: string
}

/**
 * CORS as Entra answers browsers on its metadata, JWKS and token endpoints: any origin may read
 * them (no cookies are involved), and preflights are answered for what the browser asks to send.
 */
export function allowBrowsers (app: FastifyInstance, routes: readonly BrowserRoute[]): void {
  const urls = new Set(routes.map((r) => r.url))
  app.addHook('onSend', async (request, reply) => {
    if (request.headers.origin !== undefined && urls.has(request.routeOptions.url ?? '')) reply.header('access-control-allow-origin', '*')
  })
  for (const route of routes) {
    app.options(route.url, async (request, reply) => {
      const headers: Record<string, string> = {
        'access-control-allow-origin': '*',
        'access-control-allow-methods': `${route.method}, OPTIONS`,
        'access-control-max-age': '86400'
      }
      const asked = request.headers['access-control-request-headers']
      if (typeof asked === 'string' && asked !== '') headers['access-control-allow-headers'] = asked
      return await reply.code(204).headers(headers).send()
    })
  }
}
