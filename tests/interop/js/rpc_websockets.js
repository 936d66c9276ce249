#!/usr/bin/env node
// The rpc-websockets npm client (Node) against a promisifier rpc-websockets path.
//
//   node rpc_websockets.js URL [--serializer=json|msgpack] [--only=a,b] [--timeout=SECONDS]
//
// With msgpack, the client is rpc-websockets' CommonClient with a msgpack DataPack (what the
// msgpack-rpc-websockets package does; that package is not on the npm registry): requests go
// in binary frames, and the server must answer in kind.
//
// The server side (tests/test_rpc_websockets_js.py) offers, under the URL's namespace:
// sum(...numbers or {a, b}), fail() (an application error), slow() (answers after 3 s),
// note(x) / noted() (records and lists notified values), emit(name, ...params) (a WAMP
// client publishes the event), kick() (the server ends this client's session shortly
// after answering), private() (for logged-in clients only) and the protected event
// "secret"; alice logs in with the ticket "alice-secret". Each scenario prints one line:
//
//   {"scenario": "...", "pass": true|false, "ms": 12, "details": {...}}
//
// Exit code 0 when every scenario passed, 1 when one failed, 3 on the overall timeout.

'use strict';

const { Client, CommonClient, WebSocket } = require('rpc-websockets');
const msgpack = require('msgpack5')();

const positional = [];
const flags = { only: '', timeout: '60', serializer: 'json' };
for (const arg of process.argv.slice(2)) {
  const m = /^--([a-z-]+)=(.*)$/.exec(arg);
  if (m) flags[m[1]] = m[2];
  else positional.push(arg);
}
const [URL] = positional;
const ONLY = flags.only ? flags.only.split(',') : null;
const WAIT_MS = 5000;

// rpc-websockets' DataPack interface: encode(value) -> what socket.send takes, decode(data)
class MsgpackDataPack {
  encode(value) {
    return msgpack.encode(value).slice();
  }

  decode(data) {
    return msgpack.decode(Buffer.isBuffer(data) ? data : Buffer.from(data));
  }
}

const PACK = flags.serializer === 'msgpack' ? new MsgpackDataPack() : { encode: JSON.stringify, decode: (data) => JSON.parse(data.toString()) };
// every frame the server sent, and whether it was binary
const framesSeen = { text: 0, binary: 0 };

setTimeout(() => {
  process.stdout.write(JSON.stringify({ scenario: 'overall', pass: false, details: 'timeout' }) + '\n');
  process.exit(3);
}, Number(flags.timeout) * 1000).unref();

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function within(promise, what, ms = WAIT_MS) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function check(condition, what, details) {
  if (!condition) throw new Error(`${what}: ${JSON.stringify(details)}`);
}

function open(options = {}) {
  const settings = { reconnect: false, ...options };
  const ws = flags.serializer === 'msgpack'
    ? new CommonClient(WebSocket, URL, settings, undefined, new MsgpackDataPack())
    : new Client(URL, settings);
  ws.once('open', () => ws.socket.on('message', (data, isBinary) => { framesSeen[isBinary ? 'binary' : 'text'] += 1; }));
  return within(new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  }), 'open');
}

function nextEvent(ws, name) {
  return within(new Promise((resolve) => ws.once(name, (...args) => resolve(args))), `event ${name}`);
}

async function rejection(promise) {
  try {
    const value = await promise;
    return { resolved: value };
  } catch (error) {
    return error instanceof Error ? { message: error.message } : error;
  }
}

const scenarios = {
  async calls(ws) {
    const list = await ws.call('sum', [1, 2, 3]);
    const object = await ws.call('sum', { a: 1, b: 2 });
    check(list === 6 && object === 3, 'sum', { list, object });
    const methods = await ws.listMethods();
    check(['__listMethods', 'sum', 'note', 'rpc.login'].every((m) => methods.includes(m)), '__listMethods', methods);
    return { list, object, methods };
  },

  async errors(ws) {
    const missing = await rejection(ws.call('nope', []));
    check(missing.code === -32601 && missing.message === 'Method not found', 'unknown method', missing);
    const failed = await rejection(ws.call('fail', []));
    check(failed.code === -32000 && failed.message === 'com.example.oops', 'application error', failed);
    check(JSON.stringify(failed.data) === JSON.stringify({ args: ['it broke'], kwargs: { code: 7 } }), 'error data', failed);
    return { missing, failed };
  },

  async timeouts(ws) {
    const client = await rejection(ws.call('slow', [], 200));
    check(client.message === 'reply timeout', 'client-side timeout', client);
    const server = await rejection(ws.call('slow', []));
    check(server.code === -32000 && server.message === 'wamp.error.timeout', 'server call_timeout', server);
    return { client, server };
  },

  async notifications(ws) {
    await ws.notify('note', ['first']);
    await ws.notify('note', { text: 'second' });
    let noted = [];
    for (let i = 0; i < 50 && noted.length < 2; i++) {
      noted = await ws.call('noted');
      if (noted.length < 2) await sleep(20);
    }
    check(JSON.stringify(noted) === JSON.stringify(['first', { text: 'second' }]), 'noted', noted);
    return { noted };
  },

  async batch(ws) {
    // The client has no batch API: the batch goes over its socket, the answer is read there.
    const answer = within(new Promise((resolve) => {
      ws.socket.on('message', (data) => {
        const message = PACK.decode(data);
        if (Array.isArray(message)) resolve(message);
      });
    }), 'batch answer');
    ws.socket.send(PACK.encode([
      { jsonrpc: '2.0', method: 'sum', params: [1, 1], id: 'b1' },
      { jsonrpc: '2.0', method: 'note', params: ['batched'] },
      { jsonrpc: '2.0', method: 'nope', id: 'b2' },
    ]));
    const responses = await answer;
    check(responses.length === 2 && responses[0].result === 2 && responses[1].error.code === -32601, 'batch', responses);
    return { responses };
  },

  async events(ws) {
    const subscribed = await ws.subscribe('tick');
    check(subscribed.tick === 'ok', 'subscribe', subscribed);
    const again = await ws.subscribe(['tick', 'no such event!']);
    check(again.tick === 'socket has already been subscribed to event', 'subscribed twice', again);
    const object = nextEvent(ws, 'tick');
    await ws.call('emit', ['tick', { n: 1 }]);
    const [first] = await object;
    check(first.n === 1, 'object event', first);
    const spread = nextEvent(ws, 'tick');
    await ws.call('emit', ['tick', 1, 2]);
    const values = await spread;
    check(values[0] === 1 && values[1] === 2, 'list event', values);
    const off = await ws.unsubscribe('tick');
    const offAgain = await ws.call('rpc.off', ['tick']);
    check(off.tick === 'ok' && offAgain.tick === 'not subscribed', 'unsubscribe', { off, offAgain });
    return { subscribed, again, first, values, off, offAgain };
  },

  async login(ws) {
    const forbidden = await rejection(ws.call('private'));
    check(forbidden.code === -32605, 'protected method before login', forbidden);
    const eventForbidden = await rejection(ws.subscribe('secret'));
    check(eventForbidden.code === -32606, 'protected event before login', eventForbidden);
    const refused = await rejection(ws.login({ authid: 'alice', ticket: 'wrong' }));
    check(refused.message === 'authentication failed', 'wrong ticket', refused);
    const accepted = await ws.login({ authid: 'alice', ticket: 'alice-secret' });
    check(accepted === true, 'login', accepted);
    const allowed = await ws.call('private');
    const secret = await ws.subscribe('secret');
    check(allowed === 'private' && secret.secret === 'ok', 'after login', { allowed, secret });
    const event = nextEvent(ws, 'secret');
    await ws.call('emit', ['secret', { for: 'alice' }]);
    const [received] = await event;
    check(received.for === 'alice', 'protected event', received);
    return { forbidden, eventForbidden, refused, allowed, secret };
  },

  async reconnect() {
    const ws = await open({ reconnect: true, reconnect_interval: 100, max_reconnects: 5 });
    try {
      const closed = nextEvent(ws, 'close');
      const reopened = within(new Promise((resolve) => ws.once('open', resolve)), 'reopen', 8000);
      await ws.call('kick');
      const [code] = await closed;
      await reopened;
      const after = await ws.call('sum', [20, 22]);
      check(code !== 1000 && after === 42, 'reconnect', { code, after });
      return { code, after };
    } finally {
      ws.setAutoReconnect(false);
      ws.close();
    }
  },
};

async function main() {
  let failed = false;
  for (const [name, run] of Object.entries(scenarios)) {
    if (ONLY && !ONLY.includes(name)) continue;
    const started = Date.now();
    let ws = null;
    try {
      if (name !== 'reconnect') ws = await open();
      const details = await within(run(ws), `scenario ${name}`, 15000);
      process.stdout.write(JSON.stringify({ scenario: name, pass: true, ms: Date.now() - started, details }) + '\n');
    } catch (error) {
      failed = true;
      process.stdout.write(JSON.stringify({ scenario: name, pass: false, ms: Date.now() - started, details: String(error && error.stack || error) }) + '\n');
    } finally {
      if (ws) {
        const closed = nextEvent(ws, 'close').catch(() => null);
        ws.close();
        await closed;
      }
    }
  }
  process.stdout.write(JSON.stringify({ scenario: 'frames', pass: true, details: framesSeen }) + '\n');
  process.exit(failed ? 1 : 0);
}

main();
