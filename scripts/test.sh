#!/usr/bin/env bash
# The test command of the README: sets up what the tests need (idempotent, through the
# package registries only), then runs every test of the workspace.
#
#   - a private Python venv with scipy, numpy, pandas and pyarrow (venv-ci/): recops-data's
#     npz files are read and written by scipy.sparse in an interop test, and the kill
#     suites read every file a kill left with pandas, scipy and json;
#   - the embedding model and ONNX Runtime (models/, scripts/fetch_models.sh): the
#     embeddings tests run against the real model;
#   - Chromium and chromedriver (Debian's chromium, chromium-driver): the dashboard's
#     browser tests drive a real headless browser; installed with apt-get when missing
#     and we are root;
#   - Prometheus Alertmanager and promtool (Debian's prometheus-alertmanager and
#     prometheus): the Alertmanager channel is tested against a real Alertmanager and
#     the shipped rules with `promtool check rules` / `promtool test rules`; installed
#     the same way;
#   - PostgreSQL (Debian's postgresql): the PostgreSQL store tests start throwaway
#     clusters (recops-testkit's PgCluster); installed the same way.
#
# With each in place the tests that need them must run (they fail instead of skipping).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! venv-ci/bin/python -c "import scipy.sparse" >/dev/null 2>&1; then
  echo "== setting up venv-ci (scipy, numpy)"
  python3 -m venv venv-ci
  venv-ci/bin/pip install -q --disable-pip-version-check scipy numpy
fi
if ! venv-ci/bin/python -c "import pandas, pyarrow" >/dev/null 2>&1; then
  echo "== adding pandas and pyarrow to venv-ci"
  venv-ci/bin/pip install -q --disable-pip-version-check pandas pyarrow
fi
export RECOPS_PYTHON="$PWD/venv-ci/bin/python" RECOPS_REQUIRE_SCIPY=1

echo "== scripts/fetch_models.sh (ONNX Runtime + multilingual-e5-small, fp32 and int8; idempotent)"
scripts/fetch_models.sh --quiet
export RECOPS_REQUIRE_MODELS=1

if ! { command -v chromium && command -v chromedriver; } >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing chromium and chromium-driver (dashboard browser tests)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "NOTICE: chromium/chromedriver missing and not installable here: the dashboard browser tests will be skipped"
  fi
fi
if { command -v chromium && command -v chromedriver; } >/dev/null 2>&1; then
  export RECOPS_REQUIRE_BROWSER=1
fi

have_alertmanager() { command -v alertmanager >/dev/null 2>&1 || command -v prometheus-alertmanager >/dev/null 2>&1; }
if ! { have_alertmanager && command -v promtool >/dev/null 2>&1; }; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing prometheus-alertmanager and prometheus (Alertmanager channel, promtool)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus-alertmanager prometheus >/dev/null
  else
    echo "NOTICE: alertmanager/promtool missing and not installable here: the Alertmanager and Prometheus rules tests will be skipped"
  fi
fi
if have_alertmanager; then
  export RECOPS_REQUIRE_ALERTMANAGER=1
fi
if command -v promtool >/dev/null 2>&1; then
  export RECOPS_REQUIRE_PROMTOOL=1
fi

have_initdb() {
  command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}
if ! have_initdb; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing postgresql (PostgreSQL store tests)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  else
    echo "NOTICE: PostgreSQL (initdb) missing and not installable here: the PostgreSQL store tests will be skipped"
  fi
fi
if have_initdb; then
  export RECOPS_REQUIRE_POSTGRES=1
fi

echo "== cargo test --workspace"
cargo test --workspace "$@"
