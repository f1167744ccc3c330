#!/usr/bin/env bash
# A real Kubernetes control plane (etcd + kube-apiserver, no kubelet) on loopback for the admission tests.
#
#   .ci/kube.sh build         build kube-apiserver once from the Go module proxy into the cache (see KUBE_CACHE)
#   .ci/kube.sh start DIR     build if needed, start etcd + kube-apiserver with state in DIR, print export lines
#   .ci/kube.sh stop DIR      stop what `start DIR` started
#
# kube-apiserver is not packaged by Debian. It builds from the module proxy with a scratch module that
# requires k8s.io/kubernetes and pins every k8s.io/* staging module to the matching v0.Y.Z with replace lines
# taken from kubernetes' own go.mod. Cold build: about 13 minutes on 2 cores; the binary is cached outside the
# clone in $KUBE_CACHE/v$KUBE_VERSION/kube-apiserver, so later runs start in seconds.
# etcd (etcd-server) and kubectl (kubernetes-client) come from Debian when missing.
#
# `start` prints (and writes to DIR/env.sh):
#   TF_KUBECONFIG  a kubeconfig for https://127.0.0.1:PORT with a static token in system:masters
#   TF_KUBECTL     the kubectl to use
#   TF_KUBE_DIR    DIR
#   TF_KUBE_SERVER, TF_KUBE_CA, TF_KUBE_TOKEN_FILE  the API server's URL, CA bundle and token file
# The admission tests in pkg/admission read these and skip (saying why) when they are absent.
set -euo pipefail

KUBE_VERSION=${KUBE_VERSION:-1.34.4}
KUBE_CACHE=${KUBE_CACHE:-$HOME/.cache/trustfabric/kube}
BIN=$KUBE_CACHE/v$KUBE_VERSION/kube-apiserver
export GOTOOLCHAIN=local

log() { printf 'kube.sh: %s\n' "$*" >&2; }

build() {
  if [ -x "$BIN" ] && "$BIN" --version 2>/dev/null | grep -q "v$KUBE_VERSION"; then
    log "kube-apiserver v$KUBE_VERSION cached at $BIN"
    return
  fi
  local src=$KUBE_CACHE/v$KUBE_VERSION/src
  mkdir -p "$src"
  log "building kube-apiserver v$KUBE_VERSION from the Go module proxy in $src (about 13 min cold)"
  local started=$SECONDS mod minor
  mod=$(cd "$src" && go mod download -json "k8s.io/kubernetes@v$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  [ -f "$mod" ] || { log "could not download k8s.io/kubernetes@v$KUBE_VERSION (GOPROXY=$(go env GOPROXY))"; exit 1; }
  minor=$(echo "$KUBE_VERSION" | cut -d. -f2)
  {
    printf 'module kas\n\ngo 1.24.0\n\nrequire k8s.io/kubernetes v%s\n\nreplace (\n' "$KUBE_VERSION"
    sed -n '/^replace/,/^)/p' "$mod" | awk -v v="v0.${KUBE_VERSION#1.}" '/=>/{print "\t" $1 " => " $1 " " v}'
    printf ')\n'
  } >"$src/go.mod"
  printf '//go:build tools\n\npackage kas\n\nimport _ "k8s.io/kubernetes/cmd/kube-apiserver"\n' >"$src/tools.go"
  (cd "$src" && GOFLAGS=-mod=mod go mod tidy)
  (cd "$src" && GOFLAGS=-buildvcs=false go build -o "$BIN.tmp" -ldflags "-s -w \
    -X k8s.io/component-base/version.gitVersion=v$KUBE_VERSION \
    -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor \
    -X k8s.io/component-base/version.gitTreeState=clean" k8s.io/kubernetes/cmd/kube-apiserver)
  mv "$BIN.tmp" "$BIN"
  log "built $("$BIN" --version) in $((SECONDS - started))s"
}

debs() {
  local need=()
  command -v etcd >/dev/null || need+=(etcd-server)
  command -v kubectl >/dev/null || need+=(kubernetes-client)
  command -v openssl >/dev/null || need+=(openssl)
  if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]} from Debian"
    apt-get update -qq >/dev/null
    # kubernetes-client can conflict with a kubectl installed otherwise: apt-get -f install resolves it.
    if ! apt-get install -y -qq "${need[@]}" >/dev/null; then apt-get -f install -y -qq >/dev/null; fi
  fi
}

free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 30000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  log "no free port"; exit 1
}

start() {
  local dir=${1:?usage: kube.sh start DIR}
  build
  debs
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  local pki=$dir/pki
  rm -rf "$dir/etcd-data" "$pki"
  mkdir -p "$pki" "$dir/etcd-data" "$dir/apiserver-certs"
  (
    cd "$pki"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=tf-kube-ca 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >san.cnf
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj /CN=apiserver 2>/dev/null
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out apiserver.crt -days 2 \
      -extfile san.cnf 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    token=$(openssl rand -hex 16)
    echo "$token,admin,admin-uid,\"system:masters\"" >tokens.csv
    chmod 600 tokens.csv ca.key apiserver.key sa.key
    echo "$token" >token
    chmod 600 token
  )
  local etcd_port peer_port api_port
  etcd_port=$(free_port); peer_port=$(free_port); api_port=$(free_port)
  ETCD_UNSUPPORTED_ARCH=${ETCD_UNSUPPORTED_ARCH:-} nohup etcd --name tf --data-dir "$dir/etcd-data" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "tf=http://127.0.0.1:$peer_port" >"$dir/etcd.log" 2>&1 &
  echo $! >"$dir/etcd.pid"
  nohup "$BIN" \
    --etcd-servers="http://127.0.0.1:$etcd_port" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$api_port" \
    --cert-dir="$dir/apiserver-certs" --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
    --client-ca-file="$pki/ca.crt" --token-auth-file="$pki/tokens.csv" \
    --service-account-issuer="https://127.0.0.1:$api_port" \
    --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
    --service-cluster-ip-range=10.0.0.0/24 \
    --authorization-mode=RBAC --allow-privileged=true \
    --disable-admission-plugins=ServiceAccount >"$dir/apiserver.log" 2>&1 &
  echo $! >"$dir/apiserver.pid"

  local kc=$dir/kubeconfig
  cat >"$kc" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: tf
  cluster:
    server: https://127.0.0.1:$api_port
    certificate-authority: $pki/ca.crt
users:
- name: admin
  user:
    token: $(cat "$pki/token")
contexts:
- name: tf
  context: {cluster: tf, user: admin}
current-context: tf
EOF
  chmod 600 "$kc"
  local kubectl
  kubectl=$(command -v kubectl)
  for _ in $(seq 1 120); do
    if "$kubectl" --kubeconfig "$kc" get --raw /readyz >/dev/null 2>&1; then break; fi
    if ! kill -0 "$(cat "$dir/apiserver.pid")" 2>/dev/null; then
      log "kube-apiserver exited; last lines of $dir/apiserver.log:"; tail -20 "$dir/apiserver.log" >&2; stop "$dir"; exit 1
    fi
    sleep 0.5
  done
  if ! "$kubectl" --kubeconfig "$kc" get --raw /readyz >/dev/null 2>&1; then
    log "kube-apiserver not ready after 60s; last lines of $dir/apiserver.log:"; tail -20 "$dir/apiserver.log" >&2
    stop "$dir"; exit 1
  fi
  {
    echo "export TF_KUBECONFIG=$kc"
    echo "export TF_KUBECTL=$kubectl"
    echo "export TF_KUBE_DIR=$dir"
    echo "export TF_KUBE_SERVER=https://127.0.0.1:$api_port"
    echo "export TF_KUBE_CA=$pki/ca.crt"
    echo "export TF_KUBE_TOKEN_FILE=$pki/token"
  } | tee "$dir/env.sh"
  log "kube-apiserver $("$BIN" --version | awk '{print $2}') ready at https://127.0.0.1:$api_port (stop: .ci/kube.sh stop $dir)"
}

stop() {
  local dir=${1:?usage: kube.sh stop DIR} f
  for f in apiserver etcd; do
    if [ -f "$dir/$f.pid" ]; then
      kill "$(cat "$dir/$f.pid")" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$(cat "$dir/$f.pid")" 2>/dev/null || break; sleep 0.1; done
      rm -f "$dir/$f.pid"
    fi
  done
}

case "${1:-}" in
  build) build ;;
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  *) echo "usage: $0 build | start DIR | stop DIR" >&2; exit 2 ;;
esac
