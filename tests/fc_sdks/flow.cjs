'use strict';
// FC's mini-program template flow through FC's official Node.js SDK (@alicloud/fc2), exactly
// as published, against the server at argv[2]. Prints one JSON object: what each step got
// back (or threw); tests/fc_sdks/test_node_sdk.py judges it.
//
//   node flow.cjs http://127.0.0.1:PORT SERVICE
const FCClient = require('@alicloud/fc2');

const [endpoint, service] = process.argv.slice(2);
// The SDK requires an account id and a region; with `endpoint` set they only name FC's host.
const ACCOUNT = '1234567890123456';
const REGION = 'cn-hangzhou';
const TIMEOUT = 10000; // ms; the SDK's default is 60 s

function sdk(accessKeyID, accessKeySecret, securityToken) {
  return new FCClient(ACCOUNT, {
    accessKeyID,
    accessKeySecret,
    securityToken,
    region: REGION,
    endpoint,
    timeout: TIMEOUT,
  });
}

// The template's login: the session function's anonymous HTTP trigger, called with the
// SDK's own request method. It signs every call with the credentials it holds; before login
// there are none, so any will do.
async function login(name) {
  const anonymous = sdk('anonymous', 'anonymous');
  const res = await anonymous.post(`/proxy/${service}/session/`, { authCode: `dev:${name}` });
  const sts = res.data.sts;
  return {
    sid: res.data.sessionId,
    keyId: sts.AccessKeyId,
    client: sdk(sts.AccessKeyId, sts.AccessKeySecret, sts.SecurityToken),
    forged: sdk(sts.AccessKeyId, 'x'.repeat(43), sts.SecurityToken),
  };
}

async function db(client, event) {
  try {
    const res = await client.invokeFunction(service, 'db', JSON.stringify(event));
    return {
      data: res.data,
      errorType: res.headers['x-fc-error-type'] || null,
      requestId: res.headers['x-fc-request-id'] || null,
    };
  } catch (err) {
    return { thrown: { name: err.name, code: err.code, message: err.message } };
  }
}

async function main() {
  const alice = await login('alice');
  const bob = await login('bob');
  const steps = [
    ['alice put', alice.client, { sid: alice.sid, op: 'put', obj: { id: 'buy milk', completed: false } }],
    ['alice get', alice.client, { sid: alice.sid, op: 'get', id: 'buy milk' }],
    ['alice list', alice.client, { sid: alice.sid, op: 'list' }],
    ['bob list', bob.client, { sid: bob.sid, op: 'list' }],
    ['bob get', bob.client, { sid: bob.sid, op: 'get', id: 'buy milk' }],
    ['bob put', bob.client, { sid: bob.sid, op: 'put', obj: { id: 'buy milk', completed: true } }],
    ['bob remove', bob.client, { sid: bob.sid, op: 'remove', id: 'buy milk' }],
    ['alice get again', alice.client, { sid: alice.sid, op: 'get', id: 'buy milk' }],
    ['alice with bob sid', alice.client, { sid: bob.sid, op: 'list' }],
    ['alice bad op', alice.client, { sid: alice.sid, op: 'launch' }],
    ['alice forged', alice.forged, { sid: alice.sid, op: 'list' }],
    ['alice remove', alice.client, { sid: alice.sid, op: 'remove', id: 'buy milk' }],
    ['alice get removed', alice.client, { sid: alice.sid, op: 'get', id: 'buy milk' }],
    ['alice list empty', alice.client, { sid: alice.sid, op: 'list' }],
  ];
  const out = { keyIds: [alice.keyId, bob.keyId], steps: {} };
  for (const [label, client, event] of steps) {
    out.steps[label] = await db(client, event);
  }
  process.stdout.write(JSON.stringify(out));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
