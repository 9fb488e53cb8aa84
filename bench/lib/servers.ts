import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify'
import replyFrom from '@fastify/reply-from'
import { ONE_MIB, SMALL_JSON } from './payloads'
import { aliceAccessClaims } from './alice-claims'

export const HOST = '127.0.0.1'

/** A server a child process runs: where it listens and how it closes. */
export interface Listening { port: number, close: () => Promise<void> }

/** The upstream: small JSON, 1 MiB answers, and an upload sink answering small JSON. */
export async function startUpstream (): Promise<Listening> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? ''
    if (req.method === 'POST' && url.endsWith('/upload')) {
      let bytes = 0
      req.on('data', (chunk: Buffer) => { bytes += chunk.length })
      req.on('end', () => {
        const body = `{"received":${bytes}}`
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
        res.end(body)
      })
      return
    }
    const body = url.endsWith('/1mb') ? ONE_MIB : url.endsWith('/small') ? SMALL_JSON : undefined
    if (body === undefined) {
      res.writeHead(404).end()
      return
    }
    res.writeHead(200, { 'content-type': body === ONE_MIB ? 'application/octet-stream' : 'application/json', 'content-length': body.length })
    res.end(body)
  })
  server.keepAliveTimeout = 60_000
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve))
  return { port: (server.address() as AddressInfo).port, close: async () => { server.closeAllConnections(); server.close() } }
}

/** The plain proxy: @fastify/reply-from on undici, keep-alive pool, no retries, no logging. */
export async function startReplyFrom (upstream: string): Promise<Listening> {
  const app = Fastify({ logger: false })
  // Bodies stream through unparsed, as @fastify/http-proxy and the gateway do.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, payload, done) => { done(null, payload) })
  await app.register(replyFrom, {
    base: upstream,
    undici: {
      connections: 128, // reply-from's own default: a keep-alive pool of up to 128 sockets
      pipelining: 1,
      keepAliveTimeout: 60_000,
      headersTimeout: 30_000, // the gateway's route defaults
      bodyTimeout: 60_000
    },
    retryMethods: [], // no retries at all (not even its default 503 retries of GET)
    disableRequestLogging: true
  })
  const handler = (request: FastifyRequest, reply: FastifyReply): void => {
    const url = request.raw.url ?? '/'
    reply.from(url.slice('/api'.length) || '/')
  }
  app.all('/api', handler)
  app.all('/api/*', handler)
  await app.listen({ host: HOST, port: 0 })
  return { port: (app.server.address() as AddressInfo).port, close: async () => { await app.close() } }
}

/**
 * The gateway as `buildGateway` makes it from a config file's contents: no logger, or with `logged`
 * the logger `npm start` gives it (level info: one line per request, tokens redacted), writing to
 * this process's stdout, which the driver points at /dev/null. It is loaded from dist/ (the
 * `bench:proxy` script builds first), the JavaScript `npm start` runs: through tsx every closure
 * the gateway creates per request would also pay for esbuild's keep-names helper.
 */
export async function startGateway (rawConfig: string, logged: boolean): Promise<Listening> {
  const { buildGateway, LOG_REDACTIONS } = require('../../dist/src/app') as typeof import('../../src/app')
  const { resolveConfig } = require('../../dist/src/config/load') as typeof import('../../src/config/load')
  const config = resolveConfig(JSON.parse(rawConfig), { source: 'bench' })
  const app = await buildGateway(config, logged ? { logger: { level: 'info', redact: LOG_REDACTIONS } } : {})
  await app.listen({ host: HOST, port: 0 })
  return { port: (app.server.address() as AddressInfo).port, close: async () => { await app.close() } }
}

/**
 * The Entra ID emulator in a process of its own, so its CPU (TLS, signing tokens) is not the
 * gateway's or the driver's. It signs `count` access tokens for the gateway (distinct `uti`: each
 * one a user the gateway has not seen) and writes them, with its URL and CA, to `infoFile`.
 */
export async function startEmulatorServer (infoFile: string, count: number): Promise<Listening> {
  const { mkdtempSync, writeFileSync } = require('node:fs') as typeof import('node:fs')
  const { tmpdir } = require('node:os') as typeof import('node:os')
  const { join } = require('node:path') as typeof import('node:path')
  const { DEV_IDS, startEmulator } = require('../../src/emulator') as typeof import('../../src/emulator')
  const emulator = await startEmulator({ dataDir: mkdtempSync(join(tmpdir(), 'obo-bench-emulator-')) })
  const now = Math.floor(Date.now() / 1000)
  const claims = aliceAccessClaims(DEV_IDS, emulator.url, now)
  const tokens = Array.from({ length: count }, (_, i) => emulator.keys.sign(DEV_IDS.tenantId, { ...claims, uti: `cold-${i}` }))
  writeFileSync(infoFile, JSON.stringify({ url: emulator.url, host: emulator.host, caFile: emulator.caFile, caPem: emulator.caPem, tokens }))
  return { port: Number(new URL(emulator.url).port), close: async () => { await emulator.close() } }
}
