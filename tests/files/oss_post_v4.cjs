// OSS's official Node.js SDK (ali-oss, installed with FC's SDK in tests/fc_sdks) signing
// PostObject policies with its public signPostObjectPolicyV4: the reference for
// tests/files/test_oss_sign.py. Reads [{region, accessKeyId, secret, policy, dateMs}, ...]
// as JSON on stdin, prints the signatures as a JSON list.
'use strict';
const path = require('path');
const OSS = require(path.join(__dirname, '..', 'fc_sdks', 'node_modules', 'ali-oss'));

let input = '';
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const out = JSON.parse(input).map((c) => {
    const client = new OSS({
      region: c.region,
      accessKeyId: c.accessKeyId,
      accessKeySecret: c.secret,
      bucket: 'unused',
      authorizationV4: true,
    });
    return client.signPostObjectPolicyV4(c.policy, new Date(c.dateMs));
  });
  process.stdout.write(JSON.stringify(out));
});
