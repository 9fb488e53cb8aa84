// Exit 0 when a Redis server answers PING at the URL given (plain TCP, no client library needed before npm ci).
import { connect } from 'node:net'

const url = new URL(process.argv[2] ?? 'redis://127.0.0.1:6379')
const socket = connect({ host: url.hostname, port: Number(url.port || 6379) })
const fail = () => { socket.destroy(); process.exit(1) }
socket.setTimeout(1000, fail)
socket.on('error', fail)
socket.on('connect', () => socket.write('PING\r\n'))
socket.on('data', (data) => { socket.end(); process.exit(data.toString().startsWith('+PONG') ? 0 : 1) })
