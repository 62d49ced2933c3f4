// Summarizes conformance results: every checks.json under DIR, one line per
// scenario run, then totals. Exit 1 when a check failed in a scenario that
// is not expected to fail, an expected failure passed (stale baseline), or
// (with --requested) a requested run has no results or exited non-zero.
//
//   node summarize.mjs DIR LABEL [--requested FILE] [--expected-fail a,b] [--informational] [--quiet]
// --requested FILE: the runs asked for, one "SCENARIO EXIT-STATUS" a line
//   (run-conformance.sh writes it). Every requested run must have its own
//   result folder, and its exit status must be 0 unless the scenario is an
//   expected failure (a timeout, 124, is never expected). Results that were
//   not requested are an error too.
// --quiet prints only scenarios that did not pass.
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    'expected-fail': { type: 'string', default: '' },
    requested: { type: 'string' },
    informational: { type: 'boolean', default: false },
    quiet: { type: 'boolean', default: false },
  },
});
const [dir, label] = positionals;
const expected = new Set(opts['expected-fail'].split(',').filter(Boolean));

const runs = existsSync(dir)
  ? readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort()
  : [];
let passed = 0, failed = 0, warnings = 0, bad = 0;
const perScenario = new Map();
for (const run of runs) {
  const file = join(dir, run, 'checks.json');
  const scenario = run.replace(/^server-/, '').replace(/-\d{4}-\d{2}-\d{2}T[\d-]+Z$/, '');
  let checks = [];
  try {
    checks = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    checks = [{ status: 'FAILURE', id: 'no-checks-json', errorMessage: `missing or invalid ${file}` }];
  }
  const p = checks.filter((c) => c.status === 'SUCCESS').length;
  const f = checks.filter((c) => c.status === 'FAILURE');
  const w = checks.filter((c) => c.status === 'WARNING').length;
  passed += p; failed += f.length; warnings += w;
  const s = perScenario.get(scenario) ?? { runs: 0, green: 0 };
  s.runs++; if (f.length === 0 && p > 0) s.green++;
  perScenario.set(scenario, s);
  const isExpected = expected.has(scenario);
  const mark = f.length === 0 ? (p > 0 ? 'ok  ' : 'NONE') : isExpected ? 'XFAIL' : 'FAIL';
  if ((f.length > 0 || p === 0) && !isExpected) bad++;
  if (!opts.quiet || mark !== 'ok  ') console.log(`  ${mark} ${scenario}: ${p} passed, ${f.length} failed, ${w} warnings`);
  for (const c of f) console.log(`       - ${c.id}: ${(c.errorMessage ?? '').slice(0, 240)}`);
}
for (const name of expected) {
  const s = perScenario.get(name);
  if (s && s.green === s.runs) {
    console.log(`  STALE expected failure ${name} passed: remove it from the baseline`);
    bad++;
  }
}

// What was asked for against what came back: a run that crashed or hung
// before writing its folder would otherwise simply not be counted.
if (opts.requested !== undefined) {
  const asked = new Map(); // scenario → { runs, exits: [status…] }
  const lines = existsSync(opts.requested) ? readFileSync(opts.requested, 'utf8').split('\n').filter(Boolean) : [];
  for (const line of lines) {
    const [scenario, status] = line.trim().split(/\s+/);
    const a = asked.get(scenario) ?? { runs: 0, exits: [] };
    a.runs++; a.exits.push(Number(status));
    asked.set(scenario, a);
  }
  if (asked.size === 0) {
    console.log(`  MISSING the list of requested runs (${opts.requested})`);
    bad++;
  }
  for (const [scenario, a] of asked) {
    const got = perScenario.get(scenario)?.runs ?? 0;
    if (got !== a.runs) {
      console.log(`  MISSING ${scenario}: ${a.runs} run(s) requested, ${got} with results`);
      bad++;
    }
    const nonzero = a.exits.filter((x) => x !== 0);
    const timedOut = a.exits.filter((x) => x === 124).length;
    if (timedOut > 0) {
      console.log(`  TIMEOUT ${scenario}: ${timedOut} run(s) killed after their time limit`);
      bad++;
    } else if (nonzero.length > 0 && !expected.has(scenario)) {
      console.log(`  EXIT ${scenario}: ${nonzero.length} run(s) exited non-zero (${[...new Set(nonzero)].join(', ')})`);
      bad++;
    }
  }
  for (const scenario of perScenario.keys()) {
    if (!asked.has(scenario)) {
      console.log(`  UNREQUESTED results for ${scenario}`);
      bad++;
    }
  }
}

const repeated = [...perScenario].filter(([, s]) => s.runs > 1);
for (const [name, s] of repeated) console.log(`  ${name}: ${s.green}/${s.runs} runs green`);
console.log(`conformance ${label}: ${runs.length} scenario runs (${perScenario.size} scenarios), ` +
  `${passed} checks passed, ${failed} failed${expected.size ? ` (expected: ${[...expected].join(', ')})` : ''}, ${warnings} warnings`);
if (runs.length === 0) { console.log(`conformance ${label}: no results in ${dir}`); bad++; }
process.exit(bad && !opts.informational ? 1 : 0);
