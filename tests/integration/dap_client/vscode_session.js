// Drives `llmspell debug --port` with VS Code's own DAP test client (@vscode/debugadapter-testsupport).
// Usage: node vscode_session.js PORT TOKEN SCRIPT   (run by tests/integration/test_debug_vscode.py)
// Prints "ok <check>" per passed check and "ALL OK" at the end; exits 1 at the first failure.
'use strict';

const assert = require('assert');
const path = require('path');
const { DebugClient } = require('@vscode/debugadapter-testsupport');

const [port, token, script] = [Number(process.argv[2]), process.argv[3], process.argv[4]];
const STEP_MS = 15000;

function within(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), STEP_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function ok(what) {
  console.log(`ok ${what}`);
}

async function topFrame(dc) {
  const st = await within(dc.stackTraceRequest({ threadId: 1 }), 'stackTrace');
  return st.body.stackFrames[0];
}

async function locals(dc, frameId) {
  const scopes = await within(dc.scopesRequest({ frameId }), 'scopes');
  const ref = scopes.body.scopes[0].variablesReference;
  const vars = await within(dc.variablesRequest({ variablesReference: ref }), 'variables');
  const out = {};
  for (const v of vars.body.variables) out[v.name] = v;
  return out;
}

// Send a request and wait for the stop it causes (the stopped listener is set first).
async function stopAfter(dc, request, what) {
  const stopped = dc.waitForEvent('stopped');
  await within(request(), what);
  return (await within(stopped, `stopped after ${what}`)).body;
}

async function configure(dc) {
  const bps = await dc.setBreakpointsRequest({
    source: { path: script },
    breakpoints: [
      { line: 15, condition: 'i == 3' }, // conditional
      { line: 3, logMessage: 'square {x} -> {y}' }, // logpoint
      { line: 8, hitCondition: '1' }, // hit count
    ],
  });
  assert.deepStrictEqual(bps.body.breakpoints.map(b => [b.verified, b.line]), [[true, 15], [true, 3], [true, 8]]);
  const bad = await dc.setBreakpointsRequest({ source: { path: script }, breakpoints: [{ line: 15, hitCondition: 'abc' }] });
  assert.strictEqual(bad.body.breakpoints[0].verified, false);
  await dc.setBreakpointsRequest({
    source: { path: script },
    breakpoints: [{ line: 15, condition: 'i == 3' }, { line: 3, logMessage: 'square {x} -> {y}' }, { line: 8, hitCondition: '1' }],
  });
  const fbps = await dc.setFunctionBreakpointsRequest({ breakpoints: [{ name: 'fact', hitCondition: '1' }] });
  assert.strictEqual(fbps.body.breakpoints[0].verified, true);
  await dc.setExceptionBreakpointsRequest({ filters: ['uncaught'] });
  await dc.configurationDoneRequest();
}

async function main() {
  const dc = new DebugClient('node', 'unused', 'llmspell');
  await dc.start(port);
  const output = [];
  dc.on('output', ev => output.push(ev.body));

  const init = await within(dc.initializeRequest({ adapterID: 'llmspell', linesStartAt1: true, columnsStartAt1: true, pathFormat: 'path' }), 'initialize');
  const caps = init.body;
  for (const c of ['supportsConfigurationDoneRequest', 'supportsConditionalBreakpoints', 'supportsHitConditionalBreakpoints',
    'supportsLogPoints', 'supportsFunctionBreakpoints', 'supportsRestartRequest', 'supportsExceptionInfoRequest',
    'supportsCompletionsRequest', 'supportsTerminateRequest']) {
    assert.ok(caps[c], c);
  }
  ok('initialize capabilities');

  // VS Code's order: launch right after initialize; `initialized` comes once the token was shown
  const initialized = dc.waitForEvent('initialized');
  const firstStop = dc.waitForEvent('stopped');
  await within(dc.launchRequest({ program: script, llmspellToken: token }), 'launch');
  await within(initialized, 'initialized');
  await within(configure(dc), 'configure');
  ok('launch with token, breakpoints of every kind');

  let st = (await within(firstStop, 'first stop')).body;
  assert.strictEqual(st.reason, 'breakpoint');
  let top = await topFrame(dc);
  assert.strictEqual(top.line, 15);
  assert.strictEqual(path.resolve(top.source.path), path.resolve(script));
  let vars = await locals(dc, top.id);
  assert.strictEqual(vars.i.value, '3');
  assert.strictEqual(vars.total.value, '5');
  ok('conditional breakpoint and variables');
  assert.ok(output.some(o => o.category === 'console' && o.output === 'square 2 -> 4\n'), JSON.stringify(output));
  ok('logpoint');
  const ev = await within(dc.evaluateRequest({ expression: 'total * 2', frameId: top.id, context: 'repl' }), 'evaluate');
  assert.strictEqual(ev.body.result, '10');
  ok('evaluate');

  await stopAfter(dc, () => dc.stepInRequest({ threadId: 1 }), 'stepIn');
  top = await topFrame(dc);
  assert.deepStrictEqual([top.name, top.line], ['square', 2]);
  await stopAfter(dc, () => dc.nextRequest({ threadId: 1 }), 'next');
  assert.strictEqual((await topFrame(dc)).line, 3);
  await stopAfter(dc, () => dc.stepOutRequest({ threadId: 1 }), 'stepOut');
  top = await topFrame(dc);
  assert.deepStrictEqual([top.name, top.line], ['main chunk', 15]);
  ok('step in, over, out');

  st = await stopAfter(dc, () => dc.continueRequest({ threadId: 1 }), 'continue to fact');
  assert.strictEqual(st.reason, 'function breakpoint');
  top = await topFrame(dc);
  assert.deepStrictEqual([top.name, top.line], ['fact', 7]);
  assert.strictEqual((await locals(dc, top.id)).n.value, '4');
  ok('function breakpoint with hit count');

  st = await stopAfter(dc, () => dc.continueRequest({ threadId: 1 }), 'continue to base case');
  assert.strictEqual(st.reason, 'breakpoint');
  top = await topFrame(dc);
  assert.strictEqual((await locals(dc, top.id)).n.value, '1');
  await stopAfter(dc, () => dc.stepOutRequest({ threadId: 1 }), 'stepOut of recursion');
  top = await topFrame(dc);
  assert.deepStrictEqual([top.name, top.line], ['fact', 10]);
  assert.strictEqual((await locals(dc, top.id)).n.value, '2');
  ok('hit-count breakpoint, stepOut under recursion');

  st = await stopAfter(dc, () => dc.continueRequest({ threadId: 1 }), 'continue to the error');
  assert.strictEqual(st.reason, 'exception');
  const info = await within(dc.exceptionInfoRequest({ threadId: 1 }), 'exceptionInfo');
  assert.ok(info.body.description.includes('app failed'), info.body.description);
  assert.strictEqual(info.body.breakMode, 'unhandled');
  top = await topFrame(dc);
  assert.strictEqual(top.line, 20);
  vars = await locals(dc, top.id);
  const kids = await within(dc.variablesRequest({ variablesReference: vars.data.variablesReference }), 'expand data');
  assert.ok(kids.body.variables.some(v => v.name === 'name' && v.value === '"demo"'));
  const comp = await within(dc.completionsRequest({ text: 'dat', column: 4, frameId: top.id }), 'completions');
  assert.ok(comp.body.targets.some(t => t.label === 'data'));
  ok('uncaught error, exceptionInfo, nested variables, completions');

  st = await stopAfter(dc, () => dc.restartRequest({ arguments: { program: script, llmspellToken: token } }), 'restart');
  assert.strictEqual(st.reason, 'breakpoint');
  top = await topFrame(dc);
  assert.strictEqual(top.line, 15);
  assert.strictEqual((await locals(dc, top.id)).i.value, '3');
  ok('restart');

  const terminated = dc.waitForEvent('terminated');
  await within(dc.terminateRequest({}), 'terminate');
  await within(terminated, 'terminated');
  await within(dc.disconnectRequest({}), 'disconnect');
  ok('terminate');
  console.log('ALL OK');
}

main().then(() => process.exit(0), err => {
  console.log(`FAILED: ${err && err.stack ? err.stack : err}`);
  process.exit(1);
});
