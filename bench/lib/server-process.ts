/**
 * A child process of a bench running one server: `upstream`, `reply-from <upstream url>`,
 * `gateway <config JSON> [log]` or `emulator <info file> <token count>`. The driver starts it (bench/lib/children.ts) and talks to it over IPC.
 */
import { serveControl } from './control'
import { startEmulatorServer, startGateway, startReplyFrom, startUpstream, type Listening } from './servers'

const [role, arg = '', flag] = process.argv.slice(2)
const starting: Promise<Listening> = role === 'upstream'
  ? startUpstream()
  : role === 'reply-from'
    ? startReplyFrom(arg)
    : role === 'gateway'
      ? startGateway(arg, flag === 'log')
      : role === 'emulator'
        ? startEmulatorServer(arg, Number(flag))
        : Promise.reject(new Error(`unknown server role ${String(role)}`))
starting.then(serveControl, (err: unknown) => { console.error(err); process.exit(1) })
