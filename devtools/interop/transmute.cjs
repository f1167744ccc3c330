#!/usr/bin/env node
// Interop helper: SCITT objects made and checked by @transmute/cose, an
// implementation nobody on Trustfabric wrote. cmd/trustfabric's
// TestTransmuteInterop runs it; see devtools/interop/README.md.
//
//   node transmute.cjs make DIR
//     Writes, with Transmute's key generation, signer and tlog code:
//       issuer.jwk, issuer.pub.jwk  ES256 issuer key; JWK kid = RFC 7638 thumbprint (Transmute's default)
//       log.pub.jwk                 ES256 log key; JWK kid = a thumbprint URI (free text)
//       statement.cose              Signed Statement, protected kid = UTF-8 bytes of issuer.jwk's "kid"
//       receipt.cose                RFC 9942 vds 1 receipt, protected kid = UTF-8 bytes of log.pub.jwk's "kid",
//                                   over a 3-leaf RFC 9162 tree (Transmute's leaf: SHA-256(0x00 || statement))
//       transparent.cose            statement.cose with the receipt in unprotected header 394
//       payload.txt                 the statement's payload
//     and checks the transparent statement with Transmute's own verifier.
//
//   node transmute.cjs verify SERVICE_URL TRANSPARENT_FILE ISSUER_PUBLIC_JWK
//     Verifies a Transparent Statement returned by a Transparency Service with
//     Transmute's verifier: the statement under ISSUER_PUBLIC_JWK; each receipt
//     under the key of the service's /.well-known/scitt-keys whose RFC 9679
//     COSE key thumbprint (computed here) or text kid equals the receipt's kid,
//     with the leaf convention of the service's
//     /.well-known/transparency-configuration (leaf_convention), else the
//     receipt's "trustfabric.leaf" protected header. Prints one line per check.
//
// Exit status: 0 when everything verified, 1 otherwise (message on stderr).
'use strict'

const fs = require('fs')
const path = require('path')
const nodeCrypto = require('crypto')
const cose = require('@transmute/cose')

const { cbor } = cose
const ES256 = -7

const sha256 = (b) => new Uint8Array(nodeCrypto.createHash('sha256').update(b).digest())
const u8 = (b) => new Uint8Array(b instanceof ArrayBuffer ? b : b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength))
const write = (dir, name, data) => fs.writeFileSync(path.join(dir, name), typeof data === 'string' ? data : Buffer.from(u8(data)))

// A resolver that picks the key whose kid the COSE object names, and refuses
// an object whose kid names none: no "try every key" fallback here.
function strictResolver (candidates) {
  return {
    resolve: async (coseSign1) => {
      const { value } = cbor.decodeFirstSync(coseSign1)
      const protectedHeader = value[0].length ? cbor.decodeFirstSync(value[0]) : new Map()
      const kid = protectedHeader.get(4)
      if (!kid) throw new Error('COSE object has no kid')
      const k = candidates.find((c) => Buffer.compare(Buffer.from(c.kid), Buffer.from(kid)) === 0)
      if (!k) throw new Error(`kid ${Buffer.from(kid).toString('hex')} names no known key`)
      return k.jwk
    }
  }
}

async function make (dir) {
  fs.mkdirSync(dir, { recursive: true })
  const issuer = await cose.key.generate('ES256', 'application/jwk+json')
  const log = await cose.key.generate('ES256', 'application/jwk+json')
  // The log's JWK kid is free text (a thumbprint URI), not a thumbprint.
  log.kid = await cose.key.thumbprint.calculateJwkThumbprintUri(cose.key.publicFromPrivate(log))
  const issuerPub = cose.key.publicFromPrivate(issuer)
  const logPub = cose.key.publicFromPrivate(log)
  write(dir, 'issuer.jwk', JSON.stringify(issuer, null, 2))
  write(dir, 'issuer.pub.jwk', JSON.stringify(issuerPub, null, 2))
  write(dir, 'log.pub.jwk', JSON.stringify(logPub, null, 2))

  const payload = Buffer.from('Transmute interop statement ' + new Date().toISOString() + '\n')
  write(dir, 'payload.txt', payload)
  const statementSigner = cose.attached.signer({ remote: cose.crypto.signer({ privateKeyJwk: issuer }) })
  const now = Math.floor(Date.now() / 1000)
  const statement = await statementSigner.sign({
    protectedHeader: new Map([
      [1, ES256],
      [4, Buffer.from(issuer.kid, 'utf8')], // Transmute's convention: the JWK kid string's bytes
      [3, 'text/plain'],
      [15, new Map([[1, 'https://transmute.example/issuer'], [2, 'urn:example:artifact:1'], [6, now]])]
    ]),
    unprotectedHeader: new Map(),
    payload
  })
  write(dir, 'statement.cose', statement)

  // Transmute's tlog code: leaves are SHA-256(0x00 || entry), the entry being
  // the statement bytes (cose.receipt.leaf, as its verifier computes it).
  const entries = [
    await cose.receipt.leaf(Buffer.from('another entry')),
    await cose.receipt.leaf(u8(statement)),
    await cose.receipt.leaf(Buffer.from('a third entry'))
  ]
  const receipt = await cose.receipt.inclusion.issue({
    protectedHeader: new Map([
      [1, ES256],
      [4, Buffer.from(log.kid, 'utf8')],
      [395, 1],
      [15, new Map([[1, 'https://transmute.example/log'], [6, now]])]
    ]),
    entry: 1,
    entries,
    signer: cose.detached.signer({ remote: cose.crypto.signer({ privateKeyJwk: log }) })
  })
  write(dir, 'receipt.cose', receipt)
  const transparent = await cose.receipt.add(statement, receipt)
  write(dir, 'transparent.cose', transparent)

  // Transmute's own verifier accepts what it made.
  const keys = [
    { kid: Buffer.from(issuer.kid, 'utf8'), jwk: issuerPub },
    { kid: Buffer.from(log.kid, 'utf8'), jwk: logPub }
  ]
  const verifier = await cose.receipt.verifier(strictResolver(keys))
  const v = await verifier.verify({ coseSign1: transparent, payload })
  if (v.receipts.length !== 1) throw new Error('transmute verifier checked no receipt')
  console.log('ok   transmute verifies its own transparent statement')
}

async function fetchCBOR (url) {
  const res = await fetch(url, { headers: { Accept: 'application/cbor' } })
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`)
  return cbor.decodeFirstSync(Buffer.from(await res.arrayBuffer()))
}

async function verify (service, transparentFile, issuerJwkFile) {
  service = service.replace(/\/+$/, '')
  const transparent = fs.readFileSync(transparentFile)
  const issuerPub = JSON.parse(fs.readFileSync(issuerJwkFile, 'utf8'))

  const config = await fetchCBOR(service + '/.well-known/transparency-configuration')
  const published = config instanceof Map ? config.get('leaf_convention') : config.leaf_convention

  // The service's keys, named by the RFC 9679 thumbprint computed here, or by
  // their own text kid.
  const keySet = await fetchCBOR(service + '/.well-known/scitt-keys')
  const candidates = []
  for (const coseKey of keySet) {
    const jwk = await cose.key.convertCoseKeyToJsonWebKey(coseKey)
    const thumb = await cose.key.thumbprint.calculateCoseKeyThumbprint(coseKey)
    candidates.push({ kid: u8(thumb), jwk })
    const kid = coseKey.get(2)
    if (kid) candidates.push({ kid: typeof kid === 'string' ? Buffer.from(kid, 'utf8') : kid, jwk })
  }
  if (!candidates.length) throw new Error('the service publishes no keys')

  // The statement, under the issuer's key (its kid must name that key).
  const issuerKeys = [{ kid: Buffer.from(issuerPub.kid, 'utf8'), jwk: issuerPub }]
  await cose.attached.verifier({ resolver: strictResolver(issuerKeys) }).verify({ coseSign1: transparent })
  console.log('ok   statement signature (issuer kid as JWK kid string)')

  // Receipts, over the statement as registered (no receipts).
  const registered = u8(await cose.receipt.remove(transparent))
  const receipts = await cose.receipt.get(transparent)
  if (!receipts.length) throw new Error('the transparent statement carries no receipt')
  for (const [i, receipt] of receipts.entries()) {
    const { value } = cbor.decodeFirstSync(receipt)
    const named = cbor.decodeFirstSync(value[0]).get('trustfabric.leaf')
    const convention = published || named
    let entry
    switch (convention) {
      case 'ietf': entry = await cose.receipt.leaf(sha256(registered)); break
      case 'direct': entry = await cose.receipt.leaf(registered); break
      default: throw new Error(`receipt ${i}: unknown leaf convention ${convention} (metadata ${published}, receipt ${named})`)
    }
    if (published && named && published !== named) {
      throw new Error(`receipt ${i} names leaf ${named}, the service publishes ${published}`)
    }
    await cose.receipt.inclusion.verify({
      entry,
      receipt,
      verifier: cose.detached.verifier({ resolver: strictResolver(candidates) })
    })
    console.log(`ok   receipt[${i}] inclusion and signature (leaf ${convention}, from ${published ? 'transparency-configuration' : 'the receipt'})`)
  }
}

async function main () {
  const [cmd, ...args] = process.argv.slice(2)
  if (cmd === 'make' && args.length === 1) return make(args[0])
  if (cmd === 'verify' && args.length === 3) return verify(...args)
  throw new Error('usage: transmute.cjs make DIR | verify SERVICE_URL TRANSPARENT_FILE ISSUER_PUBLIC_JWK')
}

main().catch((err) => {
  console.error('transmute interop: ' + (err && err.stack ? err.stack : err))
  process.exit(1)
})
