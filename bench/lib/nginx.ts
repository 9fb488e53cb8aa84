import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs'
import { createServer, connect, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Server } from './children'
import { onCpu } from './cpu'
import { HOST } from './servers'

/** Debian's nginx; the bench installs nothing, it only uses it when it is there. */
export const NGINX = '/usr/sbin/nginx'
export const nginxInstalled = (): boolean => existsSync(NGINX)

const START_TIMEOUT_MS = 10_000

/** `nginx/1.22.1`, as `nginx -v` names itself. */
export function nginxVersion (): string {
  return spawnSync(NGINX, ['-v'], { encoding: 'utf8' }).stderr.trim().replace(/^nginx version: /, '')
}

/**
 * The reference a reverse proxy can reach here: one nginx worker in one process (no master), no
 * access log, an upstream keep-alive pool of 128 like reply-from's, bodies streamed both ways
 * (no buffering to memory or temp files, as the node proxies stream), keep-alive connections never
 * retired by request count (nginx closes them after 1,000 requests by default; node does not).
 */
function config (dir: string, port: number, upstream: URL): string {
  return `worker_processes 1;
master_process off;
daemon off;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${join(dir, 'body')};
  proxy_temp_path ${join(dir, 'proxy')};
  fastcgi_temp_path ${join(dir, 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'uwsgi')};
  scgi_temp_path ${join(dir, 'scgi')};
  keepalive_timeout 60s;
  keepalive_requests 100000000;
  upstream bench_upstream {
    server ${upstream.host};
    keepalive 128;
    keepalive_requests 100000000;
    keepalive_timeout 60s;
  }
  server {
    listen ${HOST}:${port};
    client_max_body_size 2m;
    client_body_buffer_size 64k;
    location /api/ {
      proxy_pass http://bench_upstream/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_buffer_size 64k;
      proxy_buffers 8 64k;
      proxy_read_timeout 30s;
    }
  }
}
`
}

async function freePort (): Promise<number> {
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, HOST, resolve))
  const { port } = probe.address() as AddressInfo
  await new Promise<void>((resolve) => probe.close(() => { resolve() }))
  return port
}

function accepts (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, HOST)
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => { resolve(false) })
  })
}

/** Starts nginx on `cpu` in front of `upstream` and waits until it accepts connections. */
export async function startNginx (upstream: string, cpu: string): Promise<Server> {
  const dir = mkdtempSync(join(tmpdir(), 'obo-bench-nginx-'))
  const port = await freePort()
  writeFileSync(join(dir, 'nginx.conf'), config(dir, port, new URL(upstream)))
  const [command, argv] = onCpu(cpu, NGINX, ['-p', dir, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf')])
  const proc = spawn(command, argv, { stdio: ['ignore', 'inherit', 'inherit'] })
  let exited = false
  const gone = new Promise<void>((resolve) => proc.once('exit', () => { exited = true; resolve() }))
  const deadline = Date.now() + START_TIMEOUT_MS
  while (!(await accepts(port))) {
    if (exited) throw new Error(`nginx exited before listening (see ${join(dir, 'error.log')})`)
    if (Date.now() > deadline) { proc.kill('SIGKILL'); throw new Error('nginx did not start in time') }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return {
    name: 'nginx',
    pid: proc.pid!,
    url: `http://${HOST}:${port}`,
    stop: async () => {
      if (exited) return
      proc.kill('SIGTERM')
      await gone
    }
  }
}
