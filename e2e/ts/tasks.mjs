// Drives the 2025-11-25 experimental tasks of the built kubeq-mcp binary with
// the official TypeScript SDK's own task client (client.experimental.tasks)
// against the fake KubeIntellect (internal/fakebackend): kube_query as a
// task polled to its result, a task cancelled mid-turn, and an approval
// inside a task, approved and declined.
//
//   node tasks.mjs --transport stdio --bin ./kubeq-mcp --backend http://127.0.0.1:PORT
//   node tasks.mjs --transport http  --url http://127.0.0.1:PORT/mcp --backend http://127.0.0.1:PORT
//
// --task-ttl-ms is the server's --task-ttl (default 3600000, the binary's
// default; over stdio the script starts the binary with it). Each task asks
// for twice that, so the answer shows the cap.
//
// KUBEQ_E2E_SKIP_APPROVALS=1 skips the two approval tasks (reported as
// skipped). Exit status 1 on any failed check.
//
// What the SDK (1.32.2) does, read in node_modules/@modelcontextprotocol/sdk
// (shared/protocol.js requestStream, experimental/tasks/client.js), and how
// it meets the 2025-11-25 text (basic/utilities/tasks) and our server:
// - callToolStream sends tools/call with params.task, yields taskCreated,
//   then polls tasks/get, yielding taskStatus each time, sleeping the task's
//   pollInterval or 1000 ms when the task has none (mcp-go sends none; the
//   spec makes it optional), and on completed calls tasks/result once and
//   yields result. It keeps the call's progress handler after the
//   CreateTaskResult ("the progressToken ... remains valid throughout the
//   task lifetime"), but never drops it on the client side afterwards
//   (only a task store of its own cleans up): harmless here.
// - On failed or cancelled it yields a generic error ("Task … failed" /
//   "was cancelled") and does not call tasks/result, although the spec says
//   tasks/result of a terminal task returns exactly what the request would
//   have returned, and counts a tool result with isError as "failed": a
//   server that followed that literally would have its tool error hidden by
//   this client. Ours (mcp-go) reports a tool error as completed, so the SDK
//   shows it.
// - On input_required it calls tasks/result and yields its result, ending
//   the polling, as the spec suggests. Our server never sets input_required
//   (mcp-go has none): an approval is an elicitation/create on the session
//   while the task stays working, and the SDK answers it with the ordinary
//   elicitation handler, so the approval works with this client.
// - getTaskResult(taskId) with no resultSchema, which its .d.ts allows,
//   throws "Cannot read properties of undefined (reading '_zod')" when the
//   response arrives; we pass CallToolResultSchema.
// - Without an explicit task option, callToolStream makes every call of a
//   tool with execution.taskSupport "optional" a task once tools/list was
//   read; we pass the task option explicitly.
// Our server against the spec text, as seen here (printed as "note" lines,
// not failed): the task's progress notifications carry no
// io.modelcontextprotocol/related-task _meta (the spec says MUST for messages
// related to a task; mcp-go v1.6.0's SendNotificationToClient drops a _meta
// from its params), and the task stays working rather than input_required
// while the form is open (SHOULD). The approval's elicitation/create does
// name its task, and that is checked.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolResultSchema, ElicitRequestSchema, ErrorCode, McpError, TaskStatusNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    transport: { type: 'string' },
    bin: { type: 'string' },
    url: { type: 'string' },
    backend: { type: 'string' },
    'task-ttl-ms': { type: 'string', default: '3600000' },
  },
});
if (!args.backend || !['stdio', 'http'].includes(args.transport)) {
  console.error('usage: tasks.mjs --transport stdio|http (--bin PATH | --url URL) --backend URL [--task-ttl-ms N]');
  process.exit(2);
}
if (process.env.CI === 'true' && process.env.KUBEQ_E2E_SKIP_APPROVALS) {
  console.error('FAIL: CI=true refuses KUBEQ_E2E_SKIP_APPROVALS');
  process.exit(1);
}
const taskTTL = Number(args['task-ttl-ms']);
const RELATED = 'io.modelcontextprotocol/related-task';

const results = [];
function check(name, ok, detail) {
  results.push({ name, ok: !!ok });
  console.log(`${ok ? 'ok  ' : 'FAIL'} [${args.transport}] ${name}${ok || detail === undefined ? '' : ': ' + detail}`);
}
function note(text) {
  console.log(`note [${args.transport}] ${text}`);
}

async function fetchJSON(path) {
  const res = await fetch(args.backend + path, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`GET ${path}: HTTP ${res.status}`);
  return res.json();
}

// until polls cond (sync or async) every 50 ms for at most ms; true once it
// holds. Every wait here is bounded.
async function until(cond, ms) {
  const end = Date.now() + ms;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() >= end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

// connect opens a 2025-11-25 session that declares the tasks capability
// (list and cancel; no task-augmented requests of its own), and forms when
// onElicit is given. It records notifications/tasks/status.
async function connect(onElicit) {
  const client = new Client(
    { name: 'kubeq-e2e-ts-tasks', version: '0' },
    { capabilities: { tasks: { list: {}, cancel: {} }, ...(onElicit ? { elicitation: { form: {} } } : {}) } },
  );
  const statuses = [];
  let closing = false;
  client.onerror = (err) => {
    // The HTTP transport reports its own GET stream being aborted by close().
    if (!closing) console.error(`[${args.transport}] client error:`, err?.message ?? err);
  };
  client.setNotificationHandler(TaskStatusNotificationSchema, (n) => { statuses.push(n.params); });
  if (onElicit) client.setRequestHandler(ElicitRequestSchema, onElicit);
  const transport =
    args.transport === 'stdio'
      ? new StdioClientTransport({
          command: args.bin,
          args: ['--url', args.backend, '--retry-delays', '', '--log-level', 'warn',
            '--task-ttl', `${taskTTL}ms`, '--approval-browser', 'none'],
          stderr: 'inherit',
        })
      : new StreamableHTTPClientTransport(new URL(args.url));
  let version;
  const setVersion = transport.setProtocolVersion?.bind(transport);
  transport.setProtocolVersion = (v) => { version = v; setVersion?.(v); };
  await client.connect(transport);
  const close = async () => { closing = true; await client.close(); };
  return { client, statuses, version, close };
}

// start runs callToolStream for question as a task in the background: the
// returned run collects every message the SDK yields and the progress.
function start(client, question) {
  const run = { messages: [], progress: [], done: false, taskId: undefined, progressAtResult: -1 };
  const stream = client.experimental.tasks.callToolStream(
    { name: 'kube_query', arguments: { question } },
    undefined,
    { task: { ttl: 2 * taskTTL }, onprogress: (p) => run.progress.push(p), timeout: 30000 },
  );
  run.finished = (async () => {
    try {
      for await (const m of stream) {
        if (m.type === 'taskCreated') run.taskId = m.task.taskId;
        if (m.type === 'result') run.progressAtResult = run.progress.length;
        run.messages.push(m);
      }
    } finally {
      run.done = true;
    }
  })();
  return run;
}

// settle waits (bounded) for run's stream to end.
async function settle(run, ms) {
  await Promise.race([run.finished, new Promise((r) => setTimeout(r, ms))]);
  return run.done;
}

const types = (run) => run.messages.map((m) => (m.type === 'taskStatus' ? `taskStatus:${m.task.status}` : m.type));
const resultOf = (run) => run.messages.find((m) => m.type === 'result')?.result;
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

// errorCode returns the JSON-RPC error code of a failed promise, or 'ok'.
async function errorCode(p) {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return err instanceof McpError ? err.code : String(err);
  }
}

// polled: the diagnostic turn with a pause, as a task, polled to its result.
async function polled(sc) {
  const label = 'task polled';
  const { client, statuses, version, close } = await connect();
  try {
    check(`${label}: session is 2025-11-25`, version === '2025-11-25', version);
    const caps = client.getServerCapabilities() ?? {};
    check(`${label}: server declares tasks (list, cancel, tools/call)`,
      caps.tasks?.list && caps.tasks?.cancel && caps.tasks?.requests?.tools?.call, JSON.stringify(caps.tasks));
    const tool = (await client.listTools()).tools.find((t) => t.name === 'kube_query');
    check(`${label}: kube_query says taskSupport optional`, tool?.execution?.taskSupport === 'optional',
      JSON.stringify(tool?.execution));

    const run = start(client, sc.task_question);
    const ended = await settle(run, 30000);
    check(`${label}: the stream ended`, ended, JSON.stringify(types(run)));
    const seq = types(run);
    const created = run.messages[0];
    check(`${label}: first taskCreated, working`, created?.type === 'taskCreated' && created.task.status === 'working',
      JSON.stringify(created));
    check(`${label}: taskCreated has createdAt and lastUpdatedAt`,
      !Number.isNaN(Date.parse(created?.task?.createdAt)) && !Number.isNaN(Date.parse(created?.task?.lastUpdatedAt)),
      JSON.stringify(created?.task));
    check(`${label}: ttl capped at --task-ttl`, created?.task?.ttl === taskTTL,
      `asked ${2 * taskTTL}, got ${created?.task?.ttl}`);
    // The turn pauses task_pause_ms (longer than the SDK's 1 s poll), so
    // the client sees it working before it sees it completed.
    const statusSeq = seq.filter((t) => t.startsWith('taskStatus:'));
    check(`${label}: taskStatus working, then completed`,
      statusSeq.includes('taskStatus:working') && statusSeq.at(-1) === 'taskStatus:completed' &&
      statusSeq.indexOf('taskStatus:completed') === statusSeq.length - 1, JSON.stringify(seq));
    check(`${label}: ends with one result`, seq.at(-1) === 'result' && seq.filter((t) => t === 'result').length === 1,
      JSON.stringify(seq));
    const res = resultOf(run);
    const out = res?.structuredContent ?? {};
    check(`${label}: no error result`, res && res.isError !== true, JSON.stringify(res?.content));
    check(`${label}: answer byte-exact`, out.answer === sc.diagnostic_answer, `got ${JSON.stringify(out.answer)}`);
    check(`${label}: result names the task (related-task _meta)`, res?._meta?.[RELATED]?.taskId === run.taskId,
      JSON.stringify(res?._meta));

    // Progress on the original token while the task lives: every event, in
    // order, then the answer's tokens, all before the result.
    await new Promise((r) => setTimeout(r, 200));
    const messages = run.progress.map((p) => p.message);
    const n = sc.diagnostic_steps.length;
    check(`${label}: every event became progress, in order`, same(messages.slice(0, n), sc.diagnostic_steps),
      JSON.stringify(messages.slice(0, n)));
    check(`${label}: answer tokens streamed in full`, messages.slice(n).join('') === sc.diagnostic_answer,
      JSON.stringify(messages.slice(n).join('')));
    check(`${label}: all progress before the result`, run.progressAtResult === run.progress.length,
      `${run.progress.length - run.progressAtResult} after`);
    if (run.progress.some((p) => p._meta?.[RELATED]?.taskId !== run.taskId)) {
      note('progress of a task carries no related-task _meta (2025-11-25: MUST for task-related messages)');
    }

    const got = await client.experimental.tasks.getTask(run.taskId);
    check(`${label}: getTask says completed`, got.taskId === run.taskId && got.status === 'completed', JSON.stringify(got));
    // getTaskResult's resultSchema is optional in its types, but without one
    // the SDK throws a TypeError on the response (safeParse of undefined).
    const again = await client.experimental.tasks.getTaskResult(run.taskId, CallToolResultSchema);
    check(`${label}: getTaskResult is the stream's result`, same(again, res),
      `${JSON.stringify(again).slice(0, 200)} vs ${JSON.stringify(res).slice(0, 200)}`);
    const list = await client.experimental.tasks.listTasks();
    const listed = list.tasks.find((t) => t.taskId === run.taskId);
    check(`${label}: listTasks lists it, completed`, listed?.status === 'completed', JSON.stringify(list.tasks));
    check(`${label}: notifications/tasks/status completed arrived`,
      await until(() => statuses.some((s) => s.taskId === run.taskId && s.status === 'completed'), 5000),
      JSON.stringify(statuses));
    check(`${label}: cancelTask of a completed task is -32602`,
      (await errorCode(client.experimental.tasks.cancelTask(run.taskId))) === ErrorCode.InvalidParams);
    check(`${label}: getTask of an unknown id is -32602`,
      (await errorCode(client.experimental.tasks.getTask(randomUUID()))) === ErrorCode.InvalidParams);
    console.log(`     [${args.transport}] task polled: ${seq.join(' → ')}; progress ${run.progress.length}`);
  } finally {
    await close();
  }
}

// cancelled: a slow turn as a task, cancelled while the backend is still
// streaming it; the fake must see its request closed.
async function cancelled(sc) {
  const label = 'task cancelled';
  const { client, close } = await connect();
  // Unique per run, so this run's request is the only one in the fake's log
  // with this question (both transports share one fake).
  const question = `${sc.slow_prefix}${args.transport} ${randomUUID()}`;
  const mine = async () => (await fetchJSON('/_log')).filter((e) => e.question === question);
  try {
    const run = start(client, question);
    // Cancel once the turn is running: the backend has the request and its
    // first status line came back as progress.
    const running = await until(async () => run.taskId && run.progress.some((p) => p.message === sc.slow_step) &&
      (await mine()).length > 0, 10000);
    check(`${label}: the turn was running before the cancel`, running,
      `task ${run.taskId}, progress ${JSON.stringify(run.progress)}`);
    const ack = await client.experimental.tasks.cancelTask(run.taskId);
    check(`${label}: cancelTask answers cancelled`, ack.taskId === run.taskId && ack.status === 'cancelled',
      JSON.stringify(ack));
    const closed = await until(async () => (await mine()).some((e) => e.disconnected), 10000);
    const entries = await mine();
    check(`${label}: the backend request was closed`, closed && entries.length === 1 && !entries[0].finished,
      JSON.stringify(entries));
    const ended = await settle(run, 10000);
    const seq = types(run);
    const last = run.messages.at(-1);
    check(`${label}: the stream ends with taskStatus cancelled, then the SDK's error`,
      ended && seq.at(-2) === 'taskStatus:cancelled' && last?.type === 'error' && /cancelled/.test(last.error?.message),
      `${JSON.stringify(seq)} ${last?.error?.message ?? ''}`);
    check(`${label}: never a result`, !seq.includes('result'), JSON.stringify(seq));
    const got = await client.experimental.tasks.getTask(run.taskId);
    check(`${label}: getTask says cancelled`, got.status === 'cancelled', JSON.stringify(got));
    const list = await client.experimental.tasks.listTasks();
    check(`${label}: listTasks says cancelled`,
      list.tasks.find((t) => t.taskId === run.taskId)?.status === 'cancelled', JSON.stringify(list.tasks));
    check(`${label}: cancelTask again is -32602 (terminal)`,
      (await errorCode(client.experimental.tasks.cancelTask(run.taskId))) === ErrorCode.InvalidParams);
    console.log(`     [${args.transport}] task cancelled: ${seq.join(' → ')}`);
  } finally {
    await close();
  }
}

// approval: a turn that proposes deleting a pod, as a task; the form comes
// as elicitation/create on the session and is approved or declined.
async function approval(sc, { question, pod, answer, accept }) {
  const label = `task approval ${accept ? 'accepted' : 'declined'}`;
  const forms = [];
  let run;
  const { client, close } = await connect(async (req) => {
    const form = { params: req.params };
    forms.push(form);
    // What the task says while its form is open (asked from the handler,
    // over the same session, before answering).
    if (await until(() => run?.taskId, 5000)) {
      form.status = (await client.experimental.tasks.getTask(run.taskId)).status;
    }
    const confirm = req.params.requestedSchema?.properties?.confirm;
    return accept
      ? { action: 'accept', content: { decision: 'approve', ...(confirm ? { confirm: pod } : {}) } }
      : { action: 'decline' };
  });
  try {
    run = start(client, question);
    const ended = await settle(run, 30000);
    const seq = types(run);
    check(`${label}: the stream ended with a result`, ended && seq.at(-1) === 'result', JSON.stringify(seq));
    check(`${label}: one form shown`, forms.length === 1, `forms: ${forms.length}`);
    const form = forms[0]?.params ?? {};
    check(`${label}: form names the command`, form.message?.includes(`kubectl delete pod ${pod}`), form.message);
    check(`${label}: form asks for the pod's name`,
      form.requestedSchema?.properties?.confirm?.title?.includes(pod), JSON.stringify(form.requestedSchema?.properties?.confirm));
    check(`${label}: the task works while its form is open`, forms[0]?.status === 'working', forms[0]?.status);
    check(`${label}: the form names its task (related-task _meta)`, form._meta?.[RELATED]?.taskId === run.taskId,
      JSON.stringify(form._meta));
    const res = resultOf(run);
    const out = res?.structuredContent ?? {};
    check(`${label}: answer`, typeof out.answer === 'string' && out.answer.includes(answer), JSON.stringify(out.answer));
    const want = accept ? 'approved' : 'denied';
    check(`${label}: result records ${want}`,
      out.approvals?.length === 1 && out.approvals[0].decision === want, JSON.stringify(out.approvals));
    // What the backend was told, on this call's own backend session (the
    // result's conversation_id; turns.mjs asks the same questions).
    const session = out.conversation_id;
    check(`${label}: result names its conversation`, typeof session === 'string' && session !== '',
      JSON.stringify(session));
    const log = await fetchJSON('/_log');
    const turns = log.filter((e) => e.session === session && e.path === '/v1/chat/completions');
    check(`${label}: the conversation's first turn is this question`, turns[0]?.question === question,
      JSON.stringify(turns[0]?.question));
    const sent = turns.map((e) => e.message.trim().toLowerCase());
    if (accept) {
      check(`${label}: backend got approve`, sent.includes('approve'), JSON.stringify(sent));
    } else {
      check(`${label}: backend got deny, never approve`, sent.includes('deny') && !sent.includes('approve'),
        JSON.stringify(sent));
    }
    check(`${label}: never auto_approve`, turns.every((e) => !e.auto_approve));
    const got = await client.experimental.tasks.getTask(run.taskId);
    check(`${label}: getTask says completed`, got.status === 'completed', JSON.stringify(got));
  } finally {
    await close();
  }
}

async function main() {
  const sc = await fetchJSON('/_scenario');
  await polled(sc);
  await cancelled(sc);
  if (process.env.KUBEQ_E2E_SKIP_APPROVALS === '1') {
    console.log(`skip [${args.transport}] approval tasks (KUBEQ_E2E_SKIP_APPROVALS=1)`);
  } else {
    await approval(sc, { question: sc.approve_question, pod: sc.approve_pod, answer: sc.approved_answer, accept: true });
    await approval(sc, { question: sc.decline_question, pod: sc.decline_pod, answer: sc.declined_answer, accept: false });
  }
  const failed = results.filter((r) => !r.ok).length;
  console.log(`ts-sdk tasks [${args.transport}]: ${results.length - failed}/${results.length} checks passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((err) => {
  console.error(`FAIL [${args.transport}] ${err?.stack ?? err}`);
  process.exit(1);
});
