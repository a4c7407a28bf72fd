#!/usr/bin/env bash
# Lepton end to end on a throwaway kind cluster, for a machine with Docker, kind, kubectl and network:
#
#   1. build the image (Dockerfile) as lepton:dev and create a kind cluster;
#   2. load the image into the nodes, install the CRDs, apply deploy/overlays/kind and wait for the
#      operator, the extender and lepton-scheduler to be ready;
#   3. submit the CPU sample LeptonJob (deploy/samples/cpu-single-worker.yaml) and a long-running one;
#   4. wait until their worker pods are bound, and check lepton-scheduler bound them;
#   5. check the long-running job's status.cost.total rises between two accounting ticks;
#   6. delete the cluster (KEEP=1 keeps it for a look around).
#
# It prints PASS and exits 0, or names the step that failed and exits 1. It cannot run on the project's
# CI machines (no Docker engine with network, no image registries); docs/deploy.md says so. Every kubectl
# call names the kind context explicitly, so the script never touches another cluster.
#
# Settings (environment): CLUSTER (default lepton-e2e), NODE_IMAGE (default kindest/node:v1.33.1, which
# matches the kube-scheduler v1.33.1 of deploy/base/scheduler), KEEP (1 keeps the cluster),
# TIMEOUT_SECONDS (per wait, default 300).
set -euo pipefail

CLUSTER=${CLUSTER:-lepton-e2e}
NODE_IMAGE=${NODE_IMAGE:-kindest/node:v1.33.1}
KEEP=${KEEP:-0}
TIMEOUT_SECONDS=${TIMEOUT_SECONDS:-300}
NAMESPACE=lepton-e2e
ROOT=$(cd "$(dirname "$0")/.." && pwd)

step() { printf '\n== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
k() { kubectl --context "kind-$CLUSTER" "$@"; }

# Poll "$@" once a second until it succeeds or TIMEOUT_SECONDS pass.
wait_until() {
  local what=$1; shift
  local deadline=$((SECONDS + TIMEOUT_SECONDS))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "timed out after ${TIMEOUT_SECONDS}s waiting for $what"
    sleep 1
  done
}

for tool in docker kind kubectl; do
  command -v "$tool" >/dev/null || fail "$tool not found: this script needs docker, kind and kubectl"
done
docker info >/dev/null 2>&1 || fail "the Docker engine is not reachable (docker info failed)"

step "build lepton:dev"
docker build --tag lepton:dev "$ROOT"

step "create kind cluster $CLUSTER ($NODE_IMAGE)"
kind create cluster --name "$CLUSTER" --image "$NODE_IMAGE" --wait "${TIMEOUT_SECONDS}s"
if [ "$KEEP" != 1 ]; then
  trap 'step "delete kind cluster $CLUSTER"; kind delete cluster --name "$CLUSTER"' EXIT
fi
kind load docker-image lepton:dev --name "$CLUSTER"

step "install the CRDs, then Lepton (deploy/overlays/kind)"
# CRDs first: the overlay holds a ClusterKopfPeering, which the API server only accepts once its CRD
# is established.
k apply -f "$ROOT/deploy/base/crd-leptonjob.yaml" -f "$ROOT/deploy/base/crd-kopf-peering.yaml"
k wait --for condition=established --timeout "${TIMEOUT_SECONDS}s" \
  crd/leptonjobs.lepton.ai crd/clusterkopfpeerings.kopf.dev crd/kopfpeerings.kopf.dev
k apply -k "$ROOT/deploy/overlays/kind"
for workload in deployment/lepton-extender deployment/lepton-scheduler statefulset/lepton-operator; do
  k -n lepton-system rollout status "$workload" --timeout "${TIMEOUT_SECONDS}s"
done

step "submit the sample LeptonJobs"
k create namespace "$NAMESPACE"
k -n "$NAMESPACE" apply -f "$ROOT/deploy/samples/cpu-single-worker.yaml"
# The sample finishes in seconds; this one runs long enough for accounting ticks to add cost.
k -n "$NAMESPACE" apply -f - <<'EOF'
apiVersion: lepton.ai/v1alpha1
kind: LeptonJob
metadata:
  name: e2e-cost
spec:
  workers: 1
  template:
    spec:
      containers:
        - name: main
          image: busybox:1.36
          command: ["sleep", "3600"]
          resources:
            requests: {cpu: 100m, memory: 32Mi}
            limits: {memory: 32Mi}
EOF

# Predicates for wait_until.
pod_bound() { [ -n "$(k -n "$NAMESPACE" get pods -l "lepton.ai/job-name=$1" -o jsonpath='{.items[*].spec.nodeName}')" ]; }
cost() { k -n "$NAMESPACE" get leptonjob e2e-cost -o jsonpath='{.status.cost.total}'; }
cost_known() { [ -n "$(cost)" ]; }
cost_above() { awk -v before="$1" -v now="$(cost)" 'BEGIN { exit !(now + 0 > before + 0) }'; }

step "wait until every worker pod is bound, by lepton-scheduler"
for job in preprocess e2e-cost; do
  wait_until "a bound worker pod of $job" pod_bound "$job"
  for pod in $(k -n "$NAMESPACE" get pods -l "lepton.ai/job-name=$job" -o jsonpath='{.items[*].metadata.name}'); do
    scheduler=$(k -n "$NAMESPACE" get pod "$pod" -o jsonpath='{.spec.schedulerName}')
    [ "$scheduler" = lepton-scheduler ] || fail "$pod asks for scheduler '$scheduler', not lepton-scheduler"
    # The Scheduled event names the scheduler (profile) that bound the pod.
    reporter=$(k -n "$NAMESPACE" get events --field-selector "reason=Scheduled,involvedObject.name=$pod" \
      -o jsonpath='{.items[*].reportingComponent} {.items[*].source.component}')
    [[ "$reporter" == *lepton-scheduler* ]] || fail "$pod was not bound by lepton-scheduler (event by '$reporter')"
    echo "$pod bound to $(k -n "$NAMESPACE" get pod "$pod" -o jsonpath='{.spec.nodeName}') by lepton-scheduler"
  done
done

step "check e2e-cost's status.cost.total rises"
wait_until "a first status.cost.total on e2e-cost" cost_known
first=$(cost)
wait_until "status.cost.total of e2e-cost to rise above $first" cost_above "$first"
currency=$(k -n "$NAMESPACE" get leptonjob e2e-cost -o jsonpath='{.status.cost.currency}')
echo "e2e-cost: status.cost.total $first -> $(cost) $currency"

printf '\nPASS\n'
