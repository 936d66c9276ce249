#!/usr/bin/env node
// autobahn-js interop checks against a running promisifier relay.
//
//   node interop.js URL REALM SERIALIZER [--cancel-reply=kill_only|always] [--timeout=SECONDS] [--only=a,b]
//
// SERIALIZER is "json" or "msgpack": the only serializer offered to the relay, so the
// negotiated subprotocol must be wamp.2.SERIALIZER. --cancel-reply tells the script how the
// realm was configured (RealmConfig.cancel_reply), which decides what a cancel in a mode
// other than "kill" must look like to an autobahn-js caller (see the cancel_other_modes
// scenario). Each scenario prints one JSON line on stdout:
//
//   {"scenario": "...", "pass": true|false, "serializer": "...", "ms": 12, "details": {...}}
//
// The process exits 0 when every scenario passed, 1 when one failed, 2 on bad arguments,
// 3 when the overall timeout (default 60 s) fired. Every scenario opens its own
// connections and closes them before the next one starts; autobahn-js chatter goes to stderr.

'use strict';

const autobahn = require('autobahn');

// -- arguments ----------------------------------------------------------------------------

function usage(text) {
  process.stderr.write(`interop.js: ${text}\n`);
  process.stderr.write('usage: node interop.js URL REALM json|msgpack|cbor [--cancel-reply=kill_only|always] [--timeout=SECONDS] [--only=a,b]\n');
  process.exit(2);
}

const positional = [];
const flags = { 'cancel-reply': 'kill_only', timeout: '60', only: '' };
for (const arg of process.argv.slice(2)) {
  const m = /^--([a-z-]+)=(.*)$/.exec(arg);
  if (m) {
    if (!(m[1] in flags)) usage(`unknown option --${m[1]}`);
    flags[m[1]] = m[2];
  } else {
    positional.push(arg);
  }
}
if (positional.length !== 3) usage('URL, REALM and SERIALIZER are needed');
const [URL, REALM, SERIALIZER] = positional;
if (!['json', 'msgpack', 'cbor'].includes(SERIALIZER)) usage(`serializer must be json, msgpack or cbor, got ${SERIALIZER}`);
const CANCEL_REPLY = flags['cancel-reply'];
if (!['kill_only', 'always'].includes(CANCEL_REPLY)) usage(`--cancel-reply must be kill_only or always, got ${CANCEL_REPLY}`);
const OVERALL_TIMEOUT_MS = Number(flags.timeout) * 1000;
if (!(OVERALL_TIMEOUT_MS > 0)) usage(`--timeout must be a positive number of seconds, got ${flags.timeout}`);
const ONLY = flags.only ? flags.only.split(',') : null;

// bound on any single wait inside a scenario, and on a whole scenario
const WAIT_MS = 5000;
const SCENARIO_MS = 15000;

// WAMP message codes used when reading the wire taps
const MSG = { ERROR: 8, PUBLISH: 16, EVENT: 36, CALL: 48, CANCEL: 49, RESULT: 50, INTERRUPT: 69, YIELD: 70 };

// -- small helpers ----------------------------------------------------------------------------

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([Promise.resolve(promise), timeout]).finally(() => clearTimeout(timer));
}

// Wait until check() is truthy (polled), bounded.
async function until(check, what, ms = WAIT_MS) {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
}

// A when.js promise (autobahn-js's default) as a native one; progress goes to onProgress.
function settle(whenPromise, onProgress) {
  return new Promise((resolve, reject) => {
    whenPromise.then(resolve, reject, onProgress);
  });
}

// autobahn-js rejects with autobahn.Error {error, args, kwargs} or with a JS value.
function describeError(err) {
  if (err && typeof err === 'object' && 'error' in err) {
    return { error: err.error, args: err.args, kwargs: err.kwargs };
  }
  return { thrown: String(err && err.stack ? err.stack : err) };
}

// Text of an error autobahn-js reports to on_internal_error / on_user_error. Inside
// autobahn-js, `Error(...)` is its own WAMP error class ({error, args, kwargs}), not the JS one.
function errorText(error, text) {
  let what;
  // autobahn-js 22 reports a protocol violation as `Error(text)` called without `new` on
  // that class, so the handler gets undefined: the drop itself is the evidence then.
  if (error === undefined) what = '(no error object given)';
  else if (error && typeof error === 'object' && typeof error.error === 'string') what = error.error;
  else if (error && error.message) what = error.message;
  else what = String(error);
  return `${text || ''} ${what}`.trim();
}

function equal(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

class Failure extends Error {}

function check(condition, text) {
  if (!condition) throw new Failure(text);
}

function makeSerializer() {
  if (SERIALIZER === 'json') return new autobahn.serializer.JSONSerializer();
  if (SERIALIZER === 'cbor') {
    if (!autobahn.serializer.CBORSerializer) throw new Error('autobahn-js has no CBOR serializer (is cbor installed?)');
    return new autobahn.serializer.CBORSerializer();
  }
  if (!autobahn.serializer.MsgpackSerializer) {
    throw new Error('autobahn-js has no msgpack serializer (is msgpack5 installed?)');
  }
  return new autobahn.serializer.MsgpackSerializer();
}

// -- connections -------------------------------------------------------------------------------

const openClients = new Set();

// Open a connection and wait for its session to join. The returned client records what
// happened to it: every WAMP message sent and received (wire taps), its close, and the
// errors autobahn-js reported (protocol violations among them).
function open(label) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const client = {
        label,
        session: null,
        connection: null,
        protocol: null,
        sent: [],
        received: [],
        internalErrors: [],
        userErrors: [],
        closed: null,
        closing: false, // set when this script closes the connection itself
      };
      let joined = false;
      const connection = new autobahn.Connection({
        url: URL,
        realm: REALM,
        serializers: [makeSerializer()],
        max_retries: 0,
        retry_if_unreachable: false,
        on_internal_error: (error, text) => client.internalErrors.push(errorText(error, text)),
        on_user_error: (error, text) => client.userErrors.push(errorText(error, text)),
      });
      client.connection = connection;
      connection.onopen = (session) => {
        joined = true;
        client.session = session;
        client.protocol = session._socket && session._socket.info ? session._socket.info.protocol : null;
        // wire taps: autobahn-js sends through session._send_wamp and receives through
        // the transport's onmessage; both are looked up on every message.
        const send = session._send_wamp;
        session._send_wamp = (msg) => {
          client.sent.push(msg);
          return send(msg);
        };
        const receive = session._socket.onmessage;
        session._socket.onmessage = (msg) => {
          client.received.push(msg);
          return receive(msg);
        };
        openClients.add(client);
        resolve(client);
      };
      connection.onclose = (reason, details) => {
        client.closed = { reason, details: { reason: details.reason, message: details.message } };
        openClients.delete(client);
        if (!joined) reject(new Error(`${label}: connection closed before joining: ${reason} ${JSON.stringify(details)}`));
        return true; // never reconnect
      };
      connection.open();
    }),
    WAIT_MS,
    `${label}: open and join`,
  );
}

async function close(client) {
  if (client.closed) return;
  client.closing = true;
  try {
    client.connection.close();
  } catch (e) {
    // already closing
  }
  await until(() => client.closed, `${client.label}: close`);
}

// What went wrong with a client that should be healthy (empty list: nothing).
function problems(client) {
  const found = [];
  if (client.closed) found.push(`${client.label}: connection closed (${client.closed.reason} ${JSON.stringify(client.closed.details)})`);
  for (const text of client.internalErrors) found.push(`${client.label}: autobahn-js internal error: ${text}`);
  return found;
}

function checkHealthy(...clients) {
  const found = clients.flatMap(problems);
  check(found.length === 0, found.join('; '));
}

function checkProtocol(client) {
  check(client.protocol === `wamp.2.${SERIALIZER}`, `${client.label}: negotiated ${client.protocol}, expected wamp.2.${SERIALIZER}`);
}

// -- scenarios ---------------------------------------------------------------------------------
// Each takes a details object to fill and throws Failure (or any error) when it fails.

const scenarios = [];
function scenario(name, fn) {
  scenarios.push({ name, fn });
}

scenario('register_call', async (details) => {
  const callee = await open('callee');
  const caller = await open('caller');
  checkProtocol(callee);
  checkProtocol(caller);
  details.protocol = caller.protocol;
  await settle(callee.session.register('com.interop.add2', (args) => args[0] + args[1]));
  await settle(callee.session.register('com.interop.echo', (args, kwargs) => new autobahn.Result(args, kwargs)));
  await settle(
    callee.session.register('com.interop.fail', () => {
      throw new autobahn.Error('com.interop.error.oops', ['bad'], { code: 7 });
    }),
  );

  const sum = await withTimeout(settle(caller.session.call('com.interop.add2', [2, 3])), WAIT_MS, 'call add2');
  details.add2 = sum;
  check(sum === 5, `add2(2, 3) gave ${JSON.stringify(sum)}`);

  const payload = { args: [1, 'two', [3.5, null, true]], kwargs: { x: { y: ['z'] }, n: -42, s: 'héllo ✓' } };
  const echoed = await withTimeout(settle(caller.session.call('com.interop.echo', payload.args, payload.kwargs)), WAIT_MS, 'call echo');
  details.echo = { args: echoed.args, kwargs: echoed.kwargs };
  check(equal(echoed.args, payload.args) && equal(echoed.kwargs, payload.kwargs), 'echo did not return args and kwargs unchanged');

  const failed = await withTimeout(settle(caller.session.call('com.interop.fail')).then(() => null, (e) => e), WAIT_MS, 'call fail');
  details.fail = describeError(failed);
  check(failed && failed.error === 'com.interop.error.oops', 'application error URI not forwarded');
  check(equal(failed.args, ['bad']) && equal(failed.kwargs, { code: 7 }), 'application error args/kwargs not forwarded');

  const missing = await withTimeout(settle(caller.session.call('com.interop.nobody')).then(() => null, (e) => e), WAIT_MS, 'call nobody');
  details.missing = describeError(missing);
  check(missing && missing.error === 'wamp.error.no_such_procedure', 'expected wamp.error.no_such_procedure');

  checkHealthy(callee, caller);
  await close(caller);
  await close(callee);
});

scenario('progressive_results', async (details) => {
  const callee = await open('callee');
  const caller = await open('caller');
  const calleeSawProgress = [];
  await settle(
    callee.session.register('com.interop.countdown', (args, kwargs, invocation) => {
      calleeSawProgress.push(typeof invocation.progress === 'function');
      const n = args[0];
      return (async () => {
        if (invocation.progress) {
          for (let i = n; i > 0; i--) {
            invocation.progress([i], { left: i });
            await sleep(20);
          }
        }
        return 'liftoff';
      })();
    }),
  );

  const progress = [];
  let progressAfterFinal = false;
  let final = null;
  const result = await withTimeout(
    settle(caller.session.call('com.interop.countdown', [3], {}, { receive_progress: true }), (value) => {
      if (final !== null) progressAfterFinal = true;
      progress.push(value);
    }),
    WAIT_MS,
    'progressive call',
  );
  final = result;
  details.progress = progress.map((p) => (p instanceof autobahn.Result ? { args: p.args, kwargs: p.kwargs } : p));
  details.result = result;
  const call = caller.sent.find((m) => m[0] === MSG.CALL);
  details.call_on_wire = call;
  const results = caller.received.filter((m) => m[0] === MSG.RESULT).map((m) => m[2]);
  details.result_details_on_wire = results;
  check(result === 'liftoff', `final result ${JSON.stringify(result)}`);
  check(
    equal(details.progress, [3, 2, 1].map((i) => ({ args: [i], kwargs: { left: i } }))),
    `progressive results ${JSON.stringify(details.progress)}`,
  );
  check(equal(results, [{ progress: true }, { progress: true }, { progress: true }, {}]), 'RESULT details: three with progress, then one final');
  await sleep(100);
  check(!progressAfterFinal, 'progress after the final result');
  check(caller.received.filter((m) => m[0] === MSG.RESULT).length === 4, 'something arrived after the final RESULT');

  // Without receive_progress the callee gets no progress function and the caller only the result.
  const plainProgress = [];
  const plain = await withTimeout(
    settle(caller.session.call('com.interop.countdown', [2]), (value) => plainProgress.push(value)),
    WAIT_MS,
    'plain call',
  );
  details.plain = { result: plain, progress: plainProgress };
  details.callee_saw_progress_function = calleeSawProgress;
  check(plain === 'liftoff' && plainProgress.length === 0, 'call without receive_progress got progress');
  check(equal(calleeSawProgress, [true, false]), 'callee progress function offered when it should not be (or not offered)');

  checkHealthy(callee, caller);
  await close(caller);
  await close(callee);
});

scenario('call_timeout', async (details) => {
  const callee = await open('callee');
  const caller = await open('caller');
  let lateAnswers = 0;
  await settle(
    callee.session.register('com.interop.slow', async (args) => {
      await sleep(args[0]);
      lateAnswers += 1;
      return 'late';
    }),
  );
  await settle(callee.session.register('com.interop.ping', () => 'pong'));

  // autobahn-js passes the options object as CALL.Options unchanged: timeout is whatever
  // the application wrote; the router reads it as milliseconds (the specification's unit).
  const started = Date.now();
  const timedOut = await withTimeout(
    settle(caller.session.call('com.interop.slow', [1200], {}, { timeout: 300 })).then(() => null, (e) => e),
    WAIT_MS,
    'call with timeout',
  );
  const elapsed = Date.now() - started;
  details.timeout_error = describeError(timedOut);
  details.elapsed_ms = elapsed;
  details.call_on_wire = caller.sent.find((m) => m[0] === MSG.CALL);
  details.error_on_wire = caller.received.find((m) => m[0] === MSG.ERROR);
  check(timedOut && timedOut.error === 'wamp.error.timeout', `expected wamp.error.timeout, got ${JSON.stringify(details.timeout_error)}`);
  check(elapsed >= 250 && elapsed < 1100, `timeout fired after ${elapsed} ms, expected about 300 ms`);

  // The callee answers late: the router drops that YIELD, nobody's session suffers.
  await until(() => lateAnswers === 1, 'the late answer');
  await sleep(200);
  details.callee_got_interrupt = callee.received.some((m) => m[0] === MSG.INTERRUPT);
  check(!details.callee_got_interrupt, 'INTERRUPT sent to an autobahn-js callee (it does not announce call_canceling)');
  const pong = await withTimeout(settle(caller.session.call('com.interop.ping')), WAIT_MS, 'ping after timeout');
  check(pong === 'pong', 'ping after the timeout failed');
  const callErrors = caller.received.filter((m) => m[0] === MSG.ERROR).length;
  check(callErrors === 1, `caller got ${callErrors} ERRORs, expected exactly one`);

  // A timeout that does not fire changes nothing.
  const inTime = await withTimeout(settle(caller.session.call('com.interop.slow', [50], {}, { timeout: 3000 })), WAIT_MS, 'call in time');
  details.in_time = inTime;
  check(inTime === 'late', 'call answered within its timeout failed');

  checkHealthy(callee, caller);
  await close(caller);
  await close(callee);
});

scenario('cancel_kill', async (details) => {
  const callee = await open('callee');
  const caller = await open('caller');
  let answers = 0;
  await settle(
    callee.session.register('com.interop.hang', async (args) => {
      await sleep(args[0]);
      answers += 1;
      return 'finished anyway';
    }),
  );
  await settle(callee.session.register('com.interop.ping', () => 'pong'));

  const started = Date.now();
  const call = caller.session.call('com.interop.hang', [700]);
  const outcome = settle(call).then((r) => ({ result: r }), (e) => ({ error: e }));
  await sleep(100);
  call.cancel({ mode: 'kill' });
  const result = await withTimeout(outcome, WAIT_MS, 'cancelled call');
  details.elapsed_ms = Date.now() - started;
  details.outcome = result.error ? describeError(result.error) : result;
  details.cancel_on_wire = caller.sent.find((m) => m[0] === MSG.CANCEL);
  details.error_on_wire = caller.received.find((m) => m[0] === MSG.ERROR);
  check(equal(details.cancel_on_wire && details.cancel_on_wire[2], { mode: 'kill' }), 'CANCEL did not carry mode kill');
  check(result.error && result.error.error === 'wamp.error.canceled', `expected wamp.error.canceled, got ${JSON.stringify(details.outcome)}`);
  check(details.elapsed_ms < 650, `the ERROR came after ${details.elapsed_ms} ms: it waited for the callee`);

  await until(() => answers === 1, 'the callee finishing');
  await sleep(200);
  details.callee_got_interrupt = callee.received.some((m) => m[0] === MSG.INTERRUPT);
  check(!details.callee_got_interrupt, 'INTERRUPT sent to an autobahn-js callee');
  const pong = await withTimeout(settle(caller.session.call('com.interop.ping')), WAIT_MS, 'ping after cancel');
  check(pong === 'pong', 'ping after cancel failed');
  check(caller.received.filter((m) => m[0] === MSG.RESULT).length === 1, 'a RESULT arrived for the cancelled call');

  checkHealthy(callee, caller);
  await close(caller);
  await close(callee);
});

// Modes other than "kill" (and cancel() without options, which sends {} and so the
// router's default mode killnowait): autobahn-js rejects the call itself at once and
// forgets it, so an ERROR arriving later for that call is a protocol violation to it and
// it drops its connection. With cancel_reply "kill_only" the router sends no ERROR for
// these modes; with "always" (the specification's behaviour) it does, and this scenario
// checks that autobahn-js indeed drops its connection then (the caveat the realm option
// exists for).
scenario('cancel_other_modes', async (details) => {
  const callee = await open('callee');
  let answers = 0;
  await settle(
    callee.session.register('com.interop.hang', async (args) => {
      await sleep(args[0]);
      answers += 1;
      return 'finished anyway';
    }),
  );
  await settle(callee.session.register('com.interop.ping', () => 'pong'));
  details.cancel_reply = CANCEL_REPLY;
  const modes = [undefined, 'skip', 'killnowait'];
  const callers = [];
  for (const mode of modes) {
    const caller = await open(`caller(${mode || 'no options'})`);
    callers.push(caller);
    const call = caller.session.call('com.interop.hang', [400]);
    const outcome = settle(call).then((r) => ({ result: r }), (e) => ({ error: e }));
    await sleep(50);
    call.cancel(mode ? { mode } : undefined);
    const result = await withTimeout(outcome, WAIT_MS, 'cancelled call');
    caller.outcome = result.error ? describeError(result.error) : result;
  }
  await until(() => answers === modes.length, 'the callee finishing');
  await sleep(300);
  details.callers = callers.map((caller) => ({
    label: caller.label,
    outcome: caller.outcome,
    cancel_on_wire: caller.sent.find((m) => m[0] === MSG.CANCEL),
    error_on_wire: caller.received.find((m) => m[0] === MSG.ERROR) || null,
    closed: caller.closed,
    dropped_by_autobahn_js: Boolean(caller.closed && !caller.closing),
    internal_errors: caller.internalErrors,
  }));
  for (const caller of callers) {
    // autobahn-js's own local rejection
    check(caller.outcome.error === 'Cancelled', `${caller.label}: expected the local rejection "Cancelled", got ${JSON.stringify(caller.outcome)}`);
    const error = caller.received.find((m) => m[0] === MSG.ERROR);
    if (CANCEL_REPLY === 'kill_only') {
      check(!error, `${caller.label}: the router sent an ERROR for the cancelled call`);
      checkHealthy(caller);
      const pong = await withTimeout(settle(caller.session.call('com.interop.ping')), WAIT_MS, 'ping after cancel');
      check(pong === 'pong', `${caller.label}: ping after cancel failed`);
    } else {
      check(error && error[4] === 'wamp.error.canceled', `${caller.label}: expected the specification's ERROR wamp.error.canceled`);
      check(caller.closed && !caller.closing && caller.internalErrors.length > 0,
        `${caller.label}: expected autobahn-js to drop its connection on that ERROR`);
    }
  }
  checkHealthy(callee);
  for (const caller of callers) await close(caller);
  await close(callee);
});

// Event history (the relay keeps com.interop.history.*): wamp.subscription.get_events with
// filters (autobahn-js does not show the events' own _offset/_epoch details).
scenario('event_history', async (details) => {
  const client = await open('historian');
  const live = [];
  const subscription = await settle(
    client.session.subscribe('com.interop.history.', (args, kwargs, event) => live.push(event), { match: 'prefix' }),
  );
  for (const n of [1, 2, 3]) {
    await settle(client.session.publish('com.interop.history.t', [n], {}, { acknowledge: true, exclude_me: false }));
  }
  await until(() => live.length === 3, 'the live events');
  const events = await withTimeout(
    settle(client.session.call('wamp.subscription.get_events', [subscription.id], { reverse: true, limit: 2 })),
    WAIT_MS,
    'get_events',
  );
  details.events = events;
  check(Array.isArray(events) && events.length === 2, 'expected two events');
  check(events.every((e) => typeof e.details._epoch === 'string'), 'no history epoch in the records');
  check(equal(events.map((e) => e.args), [[3], [2]]), 'events out of order or wrong');
  check(events[0].details.topic === 'com.interop.history.t' && typeof events[0].timestamp === 'string', 'event record');
  await close(client);
});

scenario('publish_acknowledge', async (details) => {
  const subscriber = await open('subscriber');
  const publisher = await open('publisher');
  const events = [];
  await settle(subscriber.session.subscribe('com.interop.news', (args, kwargs, event) => events.push({ args, kwargs, event })));

  const publication = await withTimeout(
    settle(publisher.session.publish('com.interop.news', [1, 'a'], { k: 'v' }, { acknowledge: true })),
    WAIT_MS,
    'acknowledged publish',
  );
  details.publication = publication && publication.id;
  check(publication && Number.isInteger(publication.id) && publication.id > 0, `no publication id: ${JSON.stringify(publication)}`);
  await until(() => events.length === 1, 'the event');
  const [first] = events;
  details.event = { args: first.args, kwargs: first.kwargs, publication: first.event.publication, topic: first.event.topic };
  check(equal(first.args, [1, 'a']) && equal(first.kwargs, { k: 'v' }), 'event payload differs');
  check(first.event.publication === publication.id, 'event publication id differs from the acknowledged one');

  // No subscriber: still acknowledged.
  const lonely = await withTimeout(
    settle(publisher.session.publish('com.interop.nobody_listens', [], {}, { acknowledge: true })),
    WAIT_MS,
    'publish without subscribers',
  );
  check(lonely && Number.isInteger(lonely.id), 'publish without subscribers not acknowledged');

  // An invalid topic is refused with an ERROR when acknowledge is set.
  const refused = await withTimeout(
    settle(publisher.session.publish('com.interop.bad topic', [], {}, { acknowledge: true })).then(() => null, (e) => e),
    WAIT_MS,
    'publish to an invalid topic',
  );
  details.invalid_topic = describeError(refused);
  check(refused && refused.error === 'wamp.error.invalid_uri', 'expected wamp.error.invalid_uri');

  // Without acknowledge: no promise, no PUBLISHED.
  const unacked = publisher.session.publish('com.interop.news', ['no ack']);
  details.unacknowledged_returns = unacked === undefined || unacked === null ? null : typeof unacked;
  await until(() => events.length === 2, 'the unacknowledged event');
  check(equal(events[1].args, ['no ack']), 'unacknowledged event payload differs');

  checkHealthy(subscriber, publisher);
  await close(publisher);
  await close(subscriber);
});

scenario('pattern_subscriptions', async (details) => {
  const subscriber = await open('subscriber');
  const publisher = await open('publisher');
  const events = [];
  const handler = (name) => (args, kwargs, event) => events.push({ sub: name, args, topic: event.topic });
  const prefix = await settle(subscriber.session.subscribe('com.interop.pfx', handler('prefix'), { match: 'prefix' }));
  const wildcard = await settle(subscriber.session.subscribe('com.interop.wild..temp', handler('wildcard'), { match: 'wildcard' }));
  const exact = await settle(subscriber.session.subscribe('com.interop.pfx.exact', handler('exact')));
  await settle(subscriber.session.subscribe('com.interop.sentinel', handler('sentinel')));
  details.subscription_ids = { prefix: prefix.id, wildcard: wildcard.id, exact: exact.id };
  check(new Set([prefix.id, wildcard.id, exact.id]).size === 3, 'subscription ids not distinct');

  const topics = [
    'com.interop.pfx.a.b', // prefix
    'com.interop.wild.room1.temp', // wildcard
    'com.interop.pfx.exact', // exact and prefix
    'com.interop.wild.room1.humidity', // nothing
    'com.interop.wild.room1.temp.extra', // nothing (one component too many)
  ];
  for (const [i, topic] of topics.entries()) {
    await withTimeout(settle(publisher.session.publish(topic, [i], {}, { acknowledge: true })), WAIT_MS, `publish ${topic}`);
  }
  // Events reach the subscriber in order on its connection: once the sentinel is there,
  // everything published before it is too.
  await withTimeout(settle(publisher.session.publish('com.interop.sentinel', [], {}, { acknowledge: true })), WAIT_MS, 'sentinel');
  await until(() => events.some((e) => e.sub === 'sentinel'), 'the sentinel event');
  const got = events.filter((e) => e.sub !== 'sentinel');
  details.events = got;
  details.event_details_on_wire = subscriber.received.filter((m) => m[0] === MSG.EVENT).map((m) => m[3]);
  const expected = [
    { sub: 'prefix', args: [0], topic: 'com.interop.pfx.a.b' },
    { sub: 'wildcard', args: [1], topic: 'com.interop.wild.room1.temp' },
    { sub: 'exact', args: [2], topic: 'com.interop.pfx.exact' },
    { sub: 'prefix', args: [2], topic: 'com.interop.pfx.exact' },
  ];
  const key = (e) => JSON.stringify([e.args, e.sub, e.topic]);
  check(equal(got.map(key).sort(), expected.map(key).sort()), `events ${JSON.stringify(got)}`);
  // details.topic on the wire for pattern subscriptions (autobahn-js falls back to the
  // subscribed topic when it is missing, which would hide a missing topic for exact ones)
  const wire = subscriber.received.filter((m) => m[0] === MSG.EVENT && (m[1] === prefix.id || m[1] === wildcard.id));
  check(wire.length === 3 && wire.every((m) => m[3] && typeof m[3].topic === 'string'), 'pattern EVENTs without details.topic');

  checkHealthy(subscriber, publisher);
  await close(publisher);
  await close(subscriber);
});

scenario('exclude_me_false', async (details) => {
  const me = await open('publisher+subscriber');
  const other = await open('other subscriber');
  const mine = [];
  const theirs = [];
  await settle(me.session.subscribe('com.interop.self', (args) => mine.push(args[0])));
  await settle(other.session.subscribe('com.interop.self', (args) => theirs.push(args[0])));
  await settle(me.session.publish('com.interop.self', ['default'], {}, { acknowledge: true }));
  await settle(me.session.publish('com.interop.self', ['exclude_me true'], {}, { acknowledge: true, exclude_me: true }));
  await settle(me.session.publish('com.interop.self', ['exclude_me false'], {}, { acknowledge: true, exclude_me: false }));
  await until(() => mine.length >= 1 && theirs.length >= 3, 'the events');
  await sleep(50);
  details.publisher_received = mine;
  details.other_received = theirs;
  check(equal(mine, ['exclude_me false']), `publisher received ${JSON.stringify(mine)}`);
  check(equal(theirs, ['default', 'exclude_me true', 'exclude_me false']), `other subscriber received ${JSON.stringify(theirs)}`);
  checkHealthy(me, other);
  await close(other);
  await close(me);
});

scenario('meta_session_count', async (details) => {
  const a = await open('a');
  const count = () => withTimeout(settle(a.session.call('wamp.session.count')), WAIT_MS, 'wamp.session.count');
  const first = await count();
  details.open_here = openClients.size;
  details.first = first;
  check(first === openClients.size, `wamp.session.count gave ${first}, this script has ${openClients.size} sessions open`);
  const b = await open('b');
  const second = await count();
  details.after_join = second;
  check(second === first + 1, `after one more session joined: ${second}`);
  const anonymous = await withTimeout(settle(a.session.call('wamp.session.count', [['anonymous']])), WAIT_MS, 'count anonymous');
  const nobody = await withTimeout(settle(a.session.call('wamp.session.count', [['no_such_role']])), WAIT_MS, 'count no_such_role');
  details.filtered = { anonymous, no_such_role: nobody };
  check(anonymous === second && nobody === 0, 'filter_authroles not applied');
  await close(b);
  const third = await count();
  details.after_leave = third;
  check(third === first, `after a session left: ${third}`);
  checkHealthy(a);
  await close(a);
});

scenario('meta_registration_list', async (details) => {
  const callee = await open('callee');
  const caller = await open('caller');
  const invoked = [];
  const endpoint = (name) => (args, kwargs, invocation) => {
    invoked.push({ registration: name, procedure: invocation.procedure });
    return name;
  };
  const exact = await settle(callee.session.register('com.interop.meta.exact', endpoint('exact')));
  const prefix = await settle(callee.session.register('com.interop.meta.pfx', endpoint('prefix'), { match: 'prefix' }));
  const wildcard = await settle(callee.session.register('com.interop.meta..wc', endpoint('wildcard'), { match: 'wildcard' }));
  const ids = { exact: exact.id, prefix: prefix.id, wildcard: wildcard.id };
  details.registration_ids = ids;

  const listed = await withTimeout(settle(caller.session.call('wamp.registration.list')), WAIT_MS, 'wamp.registration.list');
  details.list = listed;
  check(listed && typeof listed === 'object', `wamp.registration.list gave ${JSON.stringify(listed)}`);
  for (const match of ['exact', 'prefix', 'wildcard']) {
    check(Array.isArray(listed[match]), `wamp.registration.list: no ${match} list`);
    check(equal(listed[match], [ids[match]]), `wamp.registration.list ${match}: ${JSON.stringify(listed[match])}, expected [${ids[match]}]`);
  }

  // Pattern registrations are called with the concrete procedure in the details.
  const answers = {
    exact: await settle(caller.session.call('com.interop.meta.exact')),
    prefix: await settle(caller.session.call('com.interop.meta.pfx.deep.x')),
    wildcard: await settle(caller.session.call('com.interop.meta.anything.wc')),
    prefix_itself: await settle(caller.session.call('com.interop.meta.pfx')),
  };
  details.answers = answers;
  details.invoked = invoked;
  check(equal(answers, { exact: 'exact', prefix: 'prefix', wildcard: 'wildcard', prefix_itself: 'prefix' }), 'pattern routing');
  check(
    equal(invoked.map((i) => i.procedure), ['com.interop.meta.exact', 'com.interop.meta.pfx.deep.x', 'com.interop.meta.anything.wc', 'com.interop.meta.pfx']),
    'INVOCATION details.procedure is not the called URI',
  );

  // Unregistering (the id goes back to the router as sent: a large integer) updates the list.
  await withTimeout(settle(callee.session.unregister(exact)), WAIT_MS, 'unregister');
  const after = await withTimeout(settle(caller.session.call('wamp.registration.list')), WAIT_MS, 'wamp.registration.list again');
  details.list_after_unregister = after;
  check(equal(after.exact, []) && equal(after.prefix, [ids.prefix]), 'wamp.registration.list after unregister');

  checkHealthy(callee, caller);
  await close(caller);
  await close(callee);
});

// -- runner ------------------------------------------------------------------------------------

function print(line) {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

const selected = ONLY ? scenarios.filter((s) => ONLY.includes(s.name)) : scenarios;
if (ONLY && selected.length !== ONLY.length) usage(`unknown scenario in --only; known: ${scenarios.map((s) => s.name).join(', ')}`);

const reported = new Set();
let failures = 0;

const overall = setTimeout(() => {
  for (const { name } of selected) {
    if (!reported.has(name)) {
      print({ scenario: name, pass: false, serializer: SERIALIZER, ms: null, details: { error: `overall timeout of ${OVERALL_TIMEOUT_MS / 1000} s` } });
    }
  }
  process.stderr.write(`interop.js: overall timeout of ${OVERALL_TIMEOUT_MS / 1000} s\n`);
  process.exit(3);
}, OVERALL_TIMEOUT_MS);

async function main() {
  for (const { name, fn } of selected) {
    const details = {};
    const started = Date.now();
    let pass = true;
    try {
      await withTimeout(fn(details), SCENARIO_MS, `scenario ${name}`);
    } catch (error) {
      pass = false;
      details.error = error instanceof Failure ? error.message : String(error && error.stack ? error.stack : error);
    }
    // Nothing may stay open from one scenario to the next.
    for (const client of [...openClients]) {
      try {
        await close(client);
      } catch (error) {
        client.connection._transport && client.connection._transport.close();
      }
    }
    openClients.clear();
    reported.add(name);
    if (!pass) failures += 1;
    print({ scenario: name, pass, serializer: SERIALIZER, ms: Date.now() - started, details });
  }
  clearTimeout(overall);
  process.stderr.write(`interop.js: ${selected.length - failures} passed, ${failures} failed (${SERIALIZER}, cancel_reply=${CANCEL_REPLY})\n`);
  process.exit(failures ? 1 : 0);
}

main().catch((error) => {
  process.stderr.write(`interop.js: ${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
