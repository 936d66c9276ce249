// Wampy.js (npm "wampy") against the relay: calls both ways, progressive call invocations
// (progressiveCall) to a procedure of the test's own client, pub/sub; with json, msgpack
// (msgpackr, which writes JavaScript's undefined as an extension type) or cbor (cbor-x).
// Driven by tests/test_interop_js.py; prints one JSON report line and exits 0 when all passed.
//
// usage: node wampy.mjs URL REALM json|msgpack|cbor
import { Wampy } from 'wampy';
import { JsonSerializer } from 'wampy/JsonSerializer.js';
import { MsgpackSerializer } from 'wampy/MsgpackSerializer.js';
import { CborSerializer } from 'wampy/CborSerializer.js';
import websocket from 'websocket'; // Wampy's own dependency: its W3C WebSocket for Node

const [URL, REALM, SERIALIZER] = process.argv.slice(2);
const serializers = { json: JsonSerializer, msgpack: MsgpackSerializer, cbor: CborSerializer };
const report = { serializer: SERIALIZER, steps: {} };
const deadline = setTimeout(() => finish('timed out'), 20000);

function finish(error) {
  clearTimeout(deadline);
  if (error) report.error = String(error && error.stack ? error.stack : error);
  process.stdout.write(JSON.stringify(report) + '\n');
  process.exit(error ? 1 : 0);
}

function check(condition, text) {
  if (!condition) throw new Error(text);
}

function client() {
  return new Wampy(URL, {
    realm: REALM,
    serializer: new serializers[SERIALIZER](),
    autoReconnect: false,
    ws: websocket.w3cwebsocket,
  });
}

async function main() {
  const wampy = client();
  const welcome = await wampy.connect();
  report.steps.joined = true;
  const features = welcome.roles.dealer.features;
  check(features.progressive_call_invocations === true, 'dealer does not announce progressive_call_invocations');

  // Wampy as the callee, our client calls it (the test's side checks the answer)
  await wampy.register('com.wampy.echo', ({ argsList, argsDict }) => ({ argsList, argsDict }));
  const echoed = await wampy.call('com.test.call_wampy', { argsList: [1, 'two'] });
  check(JSON.stringify(echoed.argsList) === JSON.stringify([1, 'two']), `echo through the test client: ${JSON.stringify(echoed)}`);
  report.steps.callee = true;

  // progressive call invocations: three chunks to the test client's stream_input procedure
  const { result, sendData } = wampy.progressiveCall('com.test.collect', { argsList: ['a'] });
  sendData({ argsList: ['b'] });
  sendData({ argsList: ['c'] }, { progress: false });
  const collected = await result;
  check(JSON.stringify(collected.argsList) === JSON.stringify([['a', 'b', 'c']]), `collected: ${JSON.stringify(collected)}`);
  report.steps.progressive_call_invocations = true;

  // pub/sub through the relay (Wampy drops exclude_me: false, so another client publishes)
  const events = [];
  await wampy.subscribe('com.wampy.news', ({ argsList }) => events.push(argsList));
  const publisher = client();
  await publisher.connect();
  await publisher.publish('com.wampy.news', { argsList: ['hello'] }, { acknowledge: true });
  await publisher.disconnect();
  for (let i = 0; i < 100 && events.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
  check(events.length === 1 && events[0][0] === 'hello', `events: ${JSON.stringify(events)}`);
  report.steps.pubsub = true;
  await wampy.disconnect();
}

main().then(() => finish(null), finish);
