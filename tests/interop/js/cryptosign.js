// autobahn-js logs in with WAMP-Cryptosign (its auth_cryptosign module, on tweetnacl) and
// prints one JSON line: what WELCOME said, or how the session was refused.
// Driven by tests/test_auth_cryptosign.py:
//   node cryptosign.js URL REALM SERIALIZER SEED_HEX [AUTHID]
'use strict';

const autobahn = require('autobahn');
const nacl = require('tweetnacl');

const [URL, REALM, SERIALIZER, SEED_HEX, AUTHID] = process.argv.slice(2);
if (!SEED_HEX) {
  console.error('usage: node cryptosign.js URL REALM json|msgpack SEED_HEX [AUTHID]');
  process.exit(2);
}

const pkey = nacl.sign.keyPair.fromSeed(Uint8Array.from(Buffer.from(SEED_HEX, 'hex')));
const serializer =
  SERIALIZER === 'msgpack' ? new autobahn.serializer.MsgpackSerializer() : new autobahn.serializer.JSONSerializer();
const challenges = [];
let reported = false;

function report(result) {
  if (reported) return;
  reported = true;
  console.log(JSON.stringify({ ...result, challenges }));
}

const connection = new autobahn.Connection({
  url: URL,
  realm: REALM,
  serializers: [serializer],
  authid: AUTHID || undefined,
  authmethods: ['cryptosign'],
  authextra: { pubkey: autobahn.auth_cryptosign.public_key(pkey) },
  onchallenge: (session, method, extra) => {
    challenges.push({ method, extra });
    return autobahn.auth_cryptosign.sign_challenge(pkey, extra);
  },
  max_retries: 0,
  retry_if_unreachable: false,
});

connection.onopen = (session, details) => {
  session.call('wamp.session.get', [session.id]).then(
    (meta) => {
      report({ joined: true, welcome: details, meta });
      connection.close();
    },
    (error) => {
      report({ joined: true, welcome: details, meta_error: String(error.error || error) });
      connection.close();
    },
  );
};

connection.onclose = (reason, details) => {
  report({ joined: false, reason, abort: { reason: details.reason, message: details.message } });
  return true; // never reconnect
};

setTimeout(() => {
  report({ joined: false, reason: 'timeout' });
  process.exit(1);
}, 10000).unref();

connection.open();
