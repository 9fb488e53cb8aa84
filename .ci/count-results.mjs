// Counts top-level tests from tap's saved results (.tap/test-results) and prints "N passed, N failed".
// A failing `npm test` whose tests all passed (lint, types, coverage) counts as one failure.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'

const status = Number(process.argv[2] ?? 1)
let passed = 0
let failed = 0
let skipped = 0

function walk (dir) {
  let entries = []
  try { entries = readdirSync(dir) } catch { return }
  for (const name of entries) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) walk(path)
    else if (name.endsWith('.tap')) count(readFileSync(path, 'utf8'))
  }
}

function count (text) {
  for (const line of text.split('\n')) {
    const m = /^(not )?ok \d+/.exec(line)
    if (!m) continue
    if (m[1]) failed++
    else if (/# (SKIP|TODO)/i.test(line)) skipped++
    else passed++
  }
}

walk('.tap/test-results')
if (status !== 0 && failed === 0) failed = 1
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`)
