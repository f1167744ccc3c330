// Verifies a Trustfabric SD-JWT VC credential or presentation with an
// independent implementation (@sd-jwt/sd-jwt-vc), for the Go interop test
// in pkg/credential. Run with NODE_PATH pointing at the node_modules that
// .ci/run installs outside the clone.
//
//   node verify.cjs ISSUER_JWK_FILE SD_JWT_FILE [NONCE AUD]
//
// Prints {"payload": <processed claims>, "kb": <KB-JWT payload or null>}
// and exits 0, or prints the error and exits 1.
'use strict';
const { readFileSync } = require('node:fs');
const { SDJwtVcInstance } = require('@sd-jwt/sd-jwt-vc');
const { ES256, digest } = require('@sd-jwt/crypto-nodejs');

async function main() {
  const [issuerFile, tokenFile, nonce, aud] = process.argv.slice(2);
  const issuerJwk = JSON.parse(readFileSync(issuerFile, 'utf8'));
  const token = readFileSync(tokenFile, 'utf8').trim();
  const verifier = await ES256.getVerifier(issuerJwk);
  const kbVerifier = async (data, sig, payload) => {
    const v = await ES256.getVerifier(payload.cnf.jwk);
    return v(data, sig);
  };
  const sdjwt = new SDJwtVcInstance({ hasher: digest, hashAlg: 'sha-256', verifier, kbVerifier });
  const res = await sdjwt.verify(token, nonce ? { keyBindingNonce: nonce } : undefined);
  if (res.header.typ !== 'dc+sd-jwt') throw new Error('typ ' + res.header.typ);
  if (aud && (!res.kb || res.kb.payload.aud !== aud)) throw new Error('aud mismatch');
  process.stdout.write(JSON.stringify({ payload: res.payload, kb: res.kb ? res.kb.payload : null }) + '\n');
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + '\n');
  process.exit(1);
});
