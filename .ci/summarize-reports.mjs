// Prints the closing "N passed, N failed[, N skipped]" line of a CI run from vitest's JSON reports, because
// CI recognises that line but not vitest's own summary. A suite file that failed to load (or failed outside
// any test, e.g. in a hook) counts as one failed test, so a broken file cannot hide behind zero failures.
// Exit status: 0 when at least one test ran and none failed, 1 otherwise (including "no reports at all").
import { readdirSync, readFileSync } from "node:fs"
import { join, resolve } from "node:path"

const reportsDir = resolve(process.argv[2] ?? ".reports")

let files = []
try {
  files = readdirSync(reportsDir)
    .filter((name) => name.endsWith(".json"))
    .sort()
} catch {
  console.error(`summarize-reports: no report directory at ${reportsDir}`)
}

let passed = 0
let failed = 0
let skipped = 0
const notes = []

const count = (value) => (Number.isInteger(value) && value >= 0 ? value : 0)

for (const name of files) {
  let report
  try {
    report = JSON.parse(readFileSync(join(reportsDir, name), "utf8"))
  } catch (error) {
    // An unreadable report means results were lost: count it as a failure rather than skip it.
    failed += 1
    notes.push(`${name}: unreadable report (${error instanceof Error ? error.message : String(error)})`)
    continue
  }
  passed += count(report.numPassedTests)
  failed += count(report.numFailedTests)
  skipped += count(report.numPendingTests) + count(report.numTodoTests)
  for (const suite of Array.isArray(report.testResults) ? report.testResults : []) {
    if (suite?.status !== "failed") continue
    const assertions = Array.isArray(suite.assertionResults) ? suite.assertionResults : []
    // Name each failed test with its first error line: the end of the log is often all a CI record keeps.
    for (const test of assertions) {
      if (test?.status !== "failed") continue
      const reason = String(test.failureMessages?.[0] ?? "")
        .split("\n")[0]
        .slice(0, 300)
      notes.push(`FAILED ${suite.name ?? name} > ${test.fullName ?? test.title}${reason ? `: ${reason}` : ""}`)
    }
    // Failed assertions are already in numFailedTests; a failed file without any is a load or hook failure.
    if (assertions.some((a) => a?.status === "failed")) continue
    failed += 1
    const firstLine = String(suite.message ?? "").split("\n")[0]
    notes.push(`${suite.name ?? name}: suite failed outside any test${firstLine ? `: ${firstLine}` : ""}`)
  }
}

for (const note of notes) console.log(`summarize-reports: ${note}`)
if (files.length === 0) console.log("summarize-reports: no vitest JSON reports found")
if (passed + failed === 0) console.log("summarize-reports: no test was executed")

console.log(`${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ""}`)
process.exitCode = failed === 0 && passed > 0 ? 0 : 1
