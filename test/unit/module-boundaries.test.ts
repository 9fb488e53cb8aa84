import { resolve } from 'node:path'
import t from 'tap'
import { ESLint } from 'eslint'

// The lint rule that keeps the gateway and the emulator apart (eslint.config.mjs), run on snippets
// as if they were files of the repository.
const eslint = new ESLint({ cwd: resolve(__dirname, '../..') })

async function boundaryViolations (filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(`${code}\nexport const used = imported\n`, { filePath })
  return (result?.messages ?? [])
    .filter((m) => m.ruleId === 'no-restricted-imports' || m.ruleId === 'no-restricted-syntax')
    .map((m) => m.message)
}

t.test('gateway code never imports the emulator', async (t) => {
  const cases: Array<[string, string]> = [
    ['src/validation/example.ts', "import { startEmulator as imported } from '../emulator'"],
    ['src/acquisition/example.ts', "import type { RunningEmulator as imported } from '../emulator/start'"],
    ['plugins/example.ts', "import { DEV_IDS as imported } from '../src/emulator/default-seed'"],
    ['routes/example.ts', "export { startEmulator as imported } from '../src/emulator'"],
    ['src/app-example.ts', "import { startEmulator as imported } from 'obo-gateway/emulator'"],
    ['src/config/example.ts', "const imported = async () => await import('../emulator/index.js')"]
  ]
  for (const [file, code] of cases) {
    const found = await boundaryViolations(file, code)
    t.equal(found.length, 1, `${file}: ${code}`)
    t.match(found[0], /Gateway code never imports the emulator/)
  }
  t.same(await boundaryViolations('src/validation/example.ts', "import { fetchJson as imported } from '../net/fetch-json'"), [], 'shared helpers are fine')
})

t.test('the emulator imports nothing of the gateway but src/net', async (t) => {
  const cases: Array<[string, string]> = [
    ['src/emulator/example.ts', "import { GatewayError as imported } from '../errors'"],
    ['src/emulator/example.ts', "import type { Principal as imported } from '../validation/principal'"],
    ['src/emulator/example.ts', "import imported from '../../plugins/entra-auth'"],
    ['src/emulator/grants/example.ts', "import { loadConfig as imported } from '../../config/load'"],
    ['src/emulator/example.ts', "import imported from 'obo-gateway/entra-auth'"]
  ]
  for (const [file, code] of cases) {
    const found = await boundaryViolations(file, code)
    t.equal(found.length, 1, `${file}: ${code}`)
    t.match(found[0], /The emulator imports nothing of the gateway/)
  }
  t.same(await boundaryViolations('src/emulator/example.ts', "import { createHttpsAgent as imported } from '../net/https-agent'"), [], 'src/net is shared')
  t.same(await boundaryViolations('src/emulator/grants/example.ts', "import { fetchJson as imported } from '../../net/fetch-json'"), [], 'src/net from a subfolder')
  t.same(await boundaryViolations('src/emulator/grants/example.ts', "import type { SeedTenant as imported } from '../seed-schema'"), [], 'its own modules')
})

t.test('the dev stack may use both', async (t) => {
  t.same(await boundaryViolations('src/dev/example.ts', "import { startEmulator as imported } from '../emulator'"), [])
})
