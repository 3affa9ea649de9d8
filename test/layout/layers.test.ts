/**
 * The layering rules (rules.ts) hold for the whole source tree, and they
 * would catch a break: a fixture where a mesh/ file imports from daemon/
 * and two folders import each other fails them.
 */
import t from 'tap'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { cruise, type ICruiseResult } from 'dependency-cruiser'
import { FORBIDDEN, SOURCES } from './rules.ts'
import { tempDir } from '../helpers/tmp.ts'

const REPO = join(import.meta.dirname, '../..')

async function check (cwd: string, sources: string[]): Promise<Array<{ rule: string, from: string, to: string }>> {
  const before = process.cwd()
  process.chdir(cwd)
  try {
    const r = await cruise(sources, { ruleSet: { forbidden: FORBIDDEN }, validate: true, doNotFollow: { path: 'node_modules' }, tsPreCompilationDeps: true, combinedDependencies: false })
    const out = r.output as ICruiseResult
    return out.summary.violations.map((v) => ({ rule: v.rule.name, from: v.from, to: v.to }))
  } finally {
    process.chdir(before)
  }
}

t.test('the source tree keeps its layers: mesh/ and providers/ import nothing from daemon/, no folder cycle', async (t) => {
  const violations = await check(REPO, SOURCES)
  t.same(violations, [], violations.map((v) => `${v.rule}: ${v.from} → ${v.to}`).join('\n') || 'no violation')
})

t.test('the rules catch a mesh/ file importing from daemon/, and two folders importing each other', async (t) => {
  const dir = tempDir(t)
  const file = (path: string, text: string): void => { mkdirSync(join(dir, path, '..'), { recursive: true }); writeFileSync(join(dir, path), text) }
  file('package.json', '{"type":"module"}')
  file('daemon/config.ts', 'export const x = 1\n')
  file('mesh/node.ts', "import { x } from '../daemon/config.ts'\nexport const y = x\n")
  file('daemon/a/one.ts', "import { two } from '../b/two.ts'\nexport const one = two\n")
  file('daemon/b/two.ts', "export const two = 2\n")
  file('daemon/b/three.ts', "import { one } from '../a/one.ts'\nexport const three = one\n")
  const rules = new Set((await check(dir, ['daemon', 'mesh'])).map((v) => v.rule))
  t.ok(rules.has('mesh-imports-no-daemon'), 'mesh → daemon is refused')
  t.ok(rules.has('no-folder-cycles'), 'daemon/a ⇄ daemon/b is refused')
})
