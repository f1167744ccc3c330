#!/usr/bin/env bash
# Self-signed TLS bootstrap for clusters without cert-manager: a CA and a serving certificate for the
# webhook's Service, stored as the Secret trustfabric-admission-tls, and the CA written into both
# webhook configurations' caBundle. Run it after `kubectl apply -f deploy/admission/`; re-run it to
# rotate (the webhook re-reads the mounted files).
set -euo pipefail
ns=trustfabric-system svc=trustfabric-admission days=${DAYS:-365}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days "$days" -subj "/CN=$svc-ca" 2>/dev/null
printf 'subjectAltName=DNS:%s.%s.svc,DNS:%s.%s.svc.cluster.local\nextendedKeyUsage=serverAuth\n' $svc $ns $svc $ns >san.cnf
openssl req -newkey rsa:2048 -nodes -keyout tls.key -out tls.csr -subj "/CN=$svc.$ns.svc" 2>/dev/null
openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out tls.crt -days "$days" -extfile san.cnf 2>/dev/null
kubectl -n $ns create secret tls $svc-tls --cert=tls.crt --key=tls.key --dry-run=client -o yaml | kubectl apply -f -
ca=$(base64 -w0 ca.crt)
for kind in validatingwebhookconfiguration mutatingwebhookconfiguration; do
  kubectl patch $kind $svc --type=json -p "[{\"op\":\"add\",\"path\":\"/webhooks/0/clientConfig/caBundle\",\"value\":\"$ca\"}]"
done
echo "TLS bootstrapped: Secret $ns/$svc-tls and caBundle of both webhook configurations"
