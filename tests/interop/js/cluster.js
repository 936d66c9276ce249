#!/usr/bin/env node
// autobahn-js across two nodes of a promisifier cluster: a callee and a subscriber on
// NODE2, a caller and a publisher on NODE1.
//
//   node cluster.js NODE1_URL NODE2_URL REALM json|msgpack
//
// Prints one JSON line: {"pass": true|false, "details": {...}}; exits 0 when it passed, 1
// when not, 3 when it took longer than 30 s.

'use strict';

const autobahn = require('autobahn');

const [NODE1, NODE2, REALM, SERIALIZER] = process.argv.slice(2);
const WAIT_MS = 10000;

function serializer() {
  return SERIALIZER === 'json' ? new autobahn.serializer.JSONSerializer() : new autobahn.serializer.MsgpackSerializer();
}

function open(url) {
  return new Promise((resolve, reject) => {
    const connection = new autobahn.Connection({
      url, realm: REALM, serializers: [serializer()], max_retries: 0, retry_if_unreachable: false,
    });
    connection.onopen = (session) => resolve({ connection, session });
    connection.onclose = (reason) => { reject(new Error(`connection closed: ${reason}`)); return true; };
    connection.open();
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// the registration reaches the other node through Redis: call until it is there
async function callWhenRegistered(session, procedure, args) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    try {
      return await session.call(procedure, args);
    } catch (error) {
      if (error.error !== 'wamp.error.no_such_procedure' || Date.now() > deadline) throw error;
      await sleep(50);
    }
  }
}

async function main() {
  const details = {};
  const two = await open(NODE2);
  const one = await open(NODE1);
  await two.session.register('com.interop.add', (args) => args[0] + args[1]);
  await two.session.register('com.interop.fail', () => {
    throw new autobahn.Error('com.interop.oops', ['bad'], { why: 'on purpose' });
  });
  const received = [];
  let gotAll;
  const allReceived = new Promise((resolve) => { gotAll = resolve; });
  await two.session.subscribe('com.interop', (args, kwargs, eventDetails) => {
    received.push([args[0], eventDetails.topic]);
    if (received.length === 3) gotAll();
  }, { match: 'prefix' });

  details.sum = await callWhenRegistered(one.session, 'com.interop.add', [2, 3]);
  try {
    await one.session.call('com.interop.fail');
    details.error = null;
  } catch (error) {
    details.error = [error.error, error.args, error.kwargs];
  }
  for (let n = 0; n < 3; n += 1) {
    await one.session.publish(`com.interop.t${n}`, [n], {}, { acknowledge: true });
  }
  await Promise.race([allReceived, sleep(WAIT_MS)]);
  details.received = received;
  one.connection.close();
  two.connection.close();
  const pass = details.sum === 5
    && JSON.stringify(details.error) === JSON.stringify(['com.interop.oops', ['bad'], { why: 'on purpose' }])
    && JSON.stringify(received) === JSON.stringify([[0, 'com.interop.t0'], [1, 'com.interop.t1'], [2, 'com.interop.t2']]);
  process.stdout.write(`${JSON.stringify({ pass, details })}\n`);
  process.exit(pass ? 0 : 1);
}

setTimeout(() => { process.stdout.write('{"pass": false, "details": "timeout"}\n'); process.exit(3); }, 30000);
main().catch((error) => {
  process.stdout.write(`${JSON.stringify({ pass: false, details: String(error && error.stack || error) })}\n`);
  process.exit(1);
});
