import neostandard from 'neostandard'

/**
 * The rooms' boundary, both ways. The gateway (src/ but the emulator, the dev stack and the CLI,
 * which chooses what to start; plugins/; routes/) never imports the emulator, so a production
 * gateway never loads it. The emulator imports nothing of the gateway but the shared networking
 * helpers in src/net, so `obo-gateway/emulator` stands on its own.
 */
const GATEWAY_FILES = ['src/**/*.ts', 'plugins/**/*.ts', 'routes/**/*.ts']
const NOT_GATEWAY_FILES = ['src/emulator/**', 'src/dev/**', 'src/cli.ts']

const GATEWAY_MESSAGE = 'Gateway code never imports the emulator (src/emulator is its own entry point, obo-gateway/emulator).'
const gatewayBoundary = {
  files: GATEWAY_FILES,
  ignores: NOT_GATEWAY_FILES,
  rules: {
    'no-restricted-imports': ['error', { patterns: [{ regex: '(^|/)emulator(/|$)', message: GATEWAY_MESSAGE }] }],
    // no-restricted-imports does not look at import(): a lazy import loads the emulator all the same.
    'no-restricted-syntax': ['error', { selector: 'ImportExpression[source.value=/(^|\\/)emulator(\\/|$)/]', message: GATEWAY_MESSAGE }]
  }
}

/** From a file `depth` folders below src/emulator, `../` that many times leaves it: only into src/net. */
function emulatorBoundary (depth) {
  const up = '\\.\\./'.repeat(depth + 1)
  return {
    files: [`src/emulator/${'*/'.repeat(depth)}*.ts`],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{
          regex: `^${up}(?!net(/|$))|^obo-gateway(/|$)`,
          message: 'The emulator imports nothing of the gateway but the shared networking helpers in src/net.'
        }]
      }]
    }
  }
}

export default [
  ...neostandard({
    ts: true,
    // The ES module faces of the CommonJS plugins (see plugins/entra-auth.mts).
    filesTs: ['**/*.mts'],
    ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.tap/**']
  }),
  gatewayBoundary,
  ...[0, 1, 2].map(emulatorBoundary)
]
