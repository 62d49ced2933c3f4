// Drives the built kubeq-mcp binary with the official TypeScript SDK against
// the fake KubeIntellect (internal/fakebackend): a diagnostic turn with
// progress, an approval accepted and an approval declined.
//
//   node turns.mjs --transport stdio --bin ./kubeq-mcp --backend http://127.0.0.1:PORT
//   node turns.mjs --transport http  --url http://127.0.0.1:PORT/mcp --backend http://127.0.0.1:PORT
//
// KUBEQ_E2E_SKIP_APPROVALS=1 skips the two approval turns (they are reported
// as skipped, not passed). Exit status 1 on any failed check.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    transport: { type: 'string' },
    bin: { type: 'string' },
    url: { type: 'string' },
    backend: { type: 'string' },
    repeat: { type: 'string', default: '1' },
  },
});
if (!args.backend || !['stdio', 'http'].includes(args.transport)) {
  console.error('usage: turns.mjs --transport stdio|http (--bin PATH | --url URL) --backend URL');
  process.exit(2);
}

// KUBEQ_E2E_XFAIL lists known failures as transport:id (comma-separated):
// they print XFAIL and do not fail the run; when one passes it prints a
// note to remove it from the list.
const xfail = new Set((process.env.KUBEQ_E2E_XFAIL ?? '').split(',').map((s) => s.trim()).filter(Boolean));
// In CI (CI=true) neither knob may loosen the run.
if (process.env.CI === 'true' && (xfail.size > 0 || process.env.KUBEQ_E2E_SKIP_APPROVALS)) {
  console.error('FAIL: CI=true refuses KUBEQ_E2E_XFAIL and KUBEQ_E2E_SKIP_APPROVALS');
  process.exit(1);
}
const results = [];
function check(name, ok, detail, id) {
  const known = id !== undefined && xfail.has(`${args.transport}:${id}`);
  results.push({ name, ok: ok || known, xfail: !ok && known });
  const mark = ok ? 'ok  ' : known ? 'XFAIL' : 'FAIL';
  console.log(`${mark} [${args.transport}] ${name}${ok || detail === undefined ? '' : ': ' + detail}`);
  if (ok && known) console.log(`note [${args.transport}] ${id} passed: remove it from KUBEQ_E2E_XFAIL`);
}

async function fetchJSON(path) {
  const res = await fetch(args.backend + path, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`GET ${path}: HTTP ${res.status}`);
  return res.json();
}

// connect opens a fresh client session; onElicit answers approval forms.
async function connect(onElicit) {
  const client = new Client(
    { name: 'kubeq-e2e-ts', version: '0' },
    { capabilities: onElicit ? { elicitation: { form: {} } } : {} },
  );
  const late = [];
  // The SDK drops progress for a request that already completed and reports
  // it here: that is a notification that arrived after its result.
  client.onerror = (err) => {
    if (/unknown token/i.test(String(err?.message))) late.push(err.message);
    else console.error(`[${args.transport}] client error:`, err?.message ?? err);
  };
  if (onElicit) client.setRequestHandler(ElicitRequestSchema, onElicit);
  const transport =
    args.transport === 'stdio'
      ? new StdioClientTransport({
          command: args.bin,
          args: ['--url', args.backend, '--retry-delays', '', '--log-level', 'warn'],
          stderr: 'inherit',
        })
      : new StreamableHTTPClientTransport(new URL(args.url));
  await client.connect(transport);
  return { client, late };
}

async function callQuery(client, question, onprogress) {
  return client.callTool(
    { name: 'kube_query', arguments: { question } },
    undefined,
    { onprogress, timeout: 30000 },
  );
}

function answerOf(res) {
  return res?.structuredContent?.answer;
}

// diagnostic runs the diagnostic turn --repeat times on one session; each
// check covers every call, and the figures say how many calls got all their
// progress before the result.
async function diagnostic(sc) {
  const { client, late } = await connect();
  const repeat = Math.max(1, Number(args.repeat) || 1);
  const n = sc.diagnostic_steps.length;
  const fails = new Map(); // check → [detail of each failing call]
  const ok = (name, cond, detail) => {
    if (!fails.has(name)) fails.set(name, []);
    if (!cond) fails.get(name).push(detail);
  };
  let clean = 0, before = 0;
  try {
    for (let i = 0; i < repeat; i++) {
      const progress = [];
      const lateBefore = late.length;
      const res = await callQuery(client, sc.diagnostic_question, (p) => progress.push(p));
      await new Promise((r) => setTimeout(r, repeat > 1 ? 20 : 200)); // let a late notification show itself
      const values = progress.map((p) => p.progress);
      const messages = progress.map((p) => p.message);
      const steps = messages.slice(0, n);
      const tokens = messages.slice(n).join('');
      const stepsOK = JSON.stringify(steps) === JSON.stringify(sc.diagnostic_steps);
      const lateNow = late.length - lateBefore;
      ok('no error result', res.isError !== true, JSON.stringify(res.content));
      ok('answer byte-exact', answerOf(res) === sc.diagnostic_answer, `got ${JSON.stringify(answerOf(res))}`);
      ok('progress strictly increasing', values.every((v, j) => j === 0 || v > values[j - 1]), JSON.stringify(values));
      ok('every event became progress, in order', stepsOK, JSON.stringify(steps));
      ok('answer tokens streamed in full before the result', tokens === sc.diagnostic_answer, `streamed ${JSON.stringify(tokens)}`);
      ok('no progress after the result', lateNow === 0, `${lateNow} notification(s) after the result`);
      if (stepsOK && tokens === sc.diagnostic_answer && lateNow === 0) clean++;
      before += progress.length;
    }
  } finally {
    await client.close();
  }
  const ids = {
    'every event became progress, in order': 'progress-steps',
    'answer tokens streamed in full before the result': 'progress-tokens',
    'no progress after the result': 'progress-late',
  };
  for (const [name, bad] of fails) {
    check(`diagnostic: ${name}`, bad.length === 0, `${bad.length} of ${repeat} calls, e.g. ${bad[0]}`, ids[name]);
  }
  console.log(`     [${args.transport}] diagnostic calls: ${repeat}, with all progress before the result: ${clean}, ` +
    `progress before results: ${before}, after: ${late.length}`);
}

async function approval(sc, { question, pod, answer, accept }) {
  const label = accept ? 'approval accepted' : 'approval declined';
  const forms = [];
  const { client } = await connect(async (req) => {
    forms.push(req.params);
    return accept
      ? { action: 'accept', content: { decision: 'approve', confirm: pod } }
      : { action: 'decline' };
  });
  try {
    const res = await callQuery(client, question, () => {});
    const out = res.structuredContent ?? {};
    check(`${label}: one form shown`, forms.length === 1, `forms: ${forms.length}`);
    check(`${label}: form names the command`, forms[0]?.message?.includes(`kubectl delete pod ${pod}`),
      forms[0]?.message);
    check(`${label}: answer`, typeof out.answer === 'string' && out.answer.includes(answer),
      JSON.stringify(out.answer));
    const want = accept ? 'approved' : 'denied';
    check(`${label}: result records ${want}`,
      out.approvals?.length === 1 && out.approvals[0].decision === want, JSON.stringify(out.approvals));
    // What the backend was told, from the fake's own log, on this call's own
    // backend session: both transports share one fake and ask the same
    // questions, so the session is the result's conversation_id, never the
    // first log entry with this question.
    const log = await fetchJSON('/_log');
    const session = out.conversation_id;
    check(`${label}: result names its conversation`, typeof session === 'string' && session !== '',
      JSON.stringify(out.conversation_id));
    const turns = log.filter((e) => e.session === session && e.path === '/v1/chat/completions');
    check(`${label}: the conversation's first turn is this question`, turns[0]?.question === question,
      JSON.stringify(turns[0]?.question));
    const sent = turns.map((e) => e.message.trim().toLowerCase());
    if (accept) {
      check(`${label}: backend got approve`, sent.includes('approve'), JSON.stringify(sent));
    } else {
      check(`${label}: backend got deny, never approve`,
        sent.includes('deny') && !sent.includes('approve'), JSON.stringify(sent));
    }
    check(`${label}: never auto_approve`, log.every((e) => !e.auto_approve));
  } finally {
    await client.close();
  }
}

async function main() {
  const sc = await fetchJSON('/_scenario');
  await diagnostic(sc);
  if (process.env.KUBEQ_E2E_SKIP_APPROVALS === '1') {
    console.log(`skip [${args.transport}] approval turns (KUBEQ_E2E_SKIP_APPROVALS=1)`);
  } else {
    await approval(sc, { question: sc.approve_question, pod: sc.approve_pod, answer: sc.approved_answer, accept: true });
    await approval(sc, { question: sc.decline_question, pod: sc.decline_pod, answer: sc.declined_answer, accept: false });
  }
  const failed = results.filter((r) => !r.ok).length;
  const known = results.filter((r) => r.xfail).length;
  console.log(`ts-sdk [${args.transport}]: ${results.length - failed - known}/${results.length} checks passed, ` +
    `${failed} failed, ${known} known failures (KUBEQ_E2E_XFAIL)`);
  process.exit(failed ? 1 : 0);
}

main().catch((err) => {
  console.error(`FAIL [${args.transport}] ${err?.stack ?? err}`);
  process.exit(1);
});
