import { createHash } from 'node:crypto'
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'

export interface Upstream {
  url: string
  /** What the server noticed, in order: 'request', 'aborted', 'close', ... */
  events: string[]
  close: () => Promise<void>
}

/**
 * An upstream with the behaviours forwarding tests need, by path:
 * /bytes?n=N streams N bytes; /raw?n=N answers N bytes with no Content-Type; /status?code=C answers
 * C with no body; /half?n=N&then=hang|reset promises N bytes, sends half, then stalls or resets;
 * /sink reads the body and answers its size and SHA-256; /hang never answers; /reset destroys the
 * socket; /with-headers?name=value answers 200 with those response headers; anything else echoes
 * method and URL.
 */
function handler (events: string[]) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    events.push(`request ${req.method ?? ''} ${req.url ?? ''}`)
    req.on('aborted', () => events.push('aborted'))
    res.on('close', () => events.push(res.writableFinished ? 'finished' : 'close'))
    const url = new URL(req.url ?? '/', 'http://upstream')
    if (url.pathname === '/bytes') {
      let left = Number(url.searchParams.get('n'))
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(left) })
      const chunk = Buffer.alloc(64 * 1024, 0x61)
      Readable.from((function * () {
        while (left > 0) {
          const size = Math.min(left, chunk.length)
          left -= size
          yield size === chunk.length ? chunk : chunk.subarray(0, size)
        }
      })()).pipe(res)
      return
    }
    if (url.pathname === '/raw') {
      const body = Buffer.alloc(Number(url.searchParams.get('n')), 0x61)
      res.writeHead(200, { 'content-length': String(body.length) })
      res.end(body)
      return
    }
    if (url.pathname === '/status') {
      res.writeHead(Number(url.searchParams.get('code'))).end()
      return
    }
    if (url.pathname === '/half') {
      const n = Number(url.searchParams.get('n'))
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(n) })
      res.write(Buffer.alloc(n >> 1, 0x61), () => {
        if (url.searchParams.get('then') === 'reset') req.socket.destroy()
      })
      return
    }
    if (url.pathname === '/sink') {
      const hash = createHash('sha256')
      let bytes = 0
      req.on('data', (c: Buffer) => { bytes += c.length; hash.update(c) })
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ bytes, sha256: hash.digest('hex'), headers: req.headers }))
      })
      return
    }
    if (url.pathname === '/with-headers') {
      res.writeHead(200, { ...Object.fromEntries(url.searchParams), 'content-type': 'application/json' })
      res.end('{}')
      return
    }
    if (url.pathname === '/hang') return
    if (url.pathname === '/reset') {
      req.socket.destroy()
      return
    }
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ method: req.method, url: req.url }))
  }
}

async function listen (server: Server, events: string[], scheme: string): Promise<Upstream> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `${scheme}://127.0.0.1:${port}`,
    events,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()) })
  }
}

export async function startSpecialUpstream (): Promise<Upstream> {
  const events: string[] = []
  return await listen(createHttpServer(handler(events)), events, 'http')
}

export async function startTlsUpstream (tls: { key: string, cert: string }): Promise<Upstream> {
  const events: string[] = []
  return await listen(createHttpsServer(tls, handler(events)) as unknown as Server, events, 'https')
}
