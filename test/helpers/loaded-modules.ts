/**
 * Run by test/integration/cli.test.ts in a child process: loads src/app (`app`) or runs the
 * gateway command with a config file (`gateway FILE`), then prints the loaded modules that belong
 * to the emulator or its dependencies, as JSON, and exits.
 */
import { main } from '../../src/cli'

const EMULATOR_ONLY = /[/\\]src[/\\](emulator|dev)[/\\]|@peculiar[/\\]|[/\\]tsyringe[/\\]|[/\\]reflect-metadata[/\\]/

async function run (): Promise<void> {
  const [what, file] = process.argv.slice(2)
  if (what === 'gateway' && file !== undefined) await main(['--config', file])
  else require('../../src/app')
  const loaded = Object.keys(require.cache)
  process.stdout.write(`${JSON.stringify({ total: loaded.length, emulator: loaded.filter((m) => EMULATOR_ONLY.test(m)), reflectPatched: typeof (Reflect as { getMetadata?: unknown }).getMetadata === 'function' })}\n`)
  process.exit(0)
}

run().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).message}\n`)
  process.exit(1)
})
