/**
 * Reliability runs (issue #14): each starts the Entra ID emulator, real upstreams on loopback and
 * the gateway, does harm, and prints figures.
 *
 *   npm run chaos -- fuzz [--requests 50000] [--seed 1414]
 *   npm run chaos -- entra        Entra slow, hanging, then stopped, under load
 *   npm run chaos -- jwks         the JWKS endpoint failing and hanging during a key rollover
 *   npm run chaos -- redis        a private redis-server killed and restarted under load
 *   npm run chaos -- upstream     upstreams that reset, hang and answer garbage
 *   npm run chaos -- aborts [--aborts 1000]   client aborts, with open sockets and handles before and after
 *   npm run chaos -- soak [--minutes 10] [--rate 300] [--new-users 2] [--l1-entries N]
 *                                 steady paced load; RSS, event-loop delay and L1 entries every 10 s
 *   npm run chaos                 everything but the soak
 */
import { parseArgs } from 'node:util'
import { DEFAULT_FUZZ_SEED } from '../../test/helpers/hostile-requests'
import { aborts } from './scenarios/aborts'
import { entra } from './scenarios/entra'
import { fuzz } from './scenarios/fuzz'
import { jwks } from './scenarios/jwks'
import { redis } from './scenarios/redis'
import { soak } from './scenarios/soak'
import { upstream } from './scenarios/upstream'

const { values, positionals } = parseArgs({
  args: process.argv.slice(2),
  allowPositionals: true,
  options: {
    requests: { type: 'string', default: '50000' },
    seed: { type: 'string', default: process.env.FUZZ_SEED ?? String(DEFAULT_FUZZ_SEED) },
    aborts: { type: 'string', default: '1000' },
    minutes: { type: 'string', default: '10' },
    rate: { type: 'string', default: '300' },
    'new-users': { type: 'string', default: '2' },
    'l1-entries': { type: 'string' }
  }
})

const scenarios: Record<string, () => Promise<void>> = {
  fuzz: () => fuzz({ requests: Number(values.requests), seed: Number(values.seed) }),
  entra,
  jwks,
  redis,
  upstream,
  aborts: () => aborts({ aborts: Number(values.aborts) }),
  soak: () => soak({
    minutes: Number(values.minutes),
    rate: Number(values.rate),
    newUsers: Number(values['new-users']),
    ...(values['l1-entries'] === undefined ? {} : { l1Entries: Number(values['l1-entries']) })
  })
}

async function main (): Promise<void> {
  const chosen = positionals.length === 0 ? Object.keys(scenarios).filter((s) => s !== 'soak') : positionals
  const unknown = chosen.filter((s) => !(s in scenarios))
  if (unknown.length > 0) {
    console.error(`unknown run ${unknown.join(', ')}; the runs are ${Object.keys(scenarios).join(', ')}`)
    process.exitCode = 2
    return
  }
  for (const name of chosen) await scenarios[name]!()
}

main().then(() => { process.exit() }, (err: unknown) => { console.error(err); process.exit(1) })
