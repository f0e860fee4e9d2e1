#!/usr/bin/env bash
# Installs the peers `npm run bench` measures floe against (Debian 12 / Ubuntu packages), plus GNU time,
# which measures CPU and peak memory. Needs root or sudo. The bench is not run by CI: run this once on
# the benchmark machine. A peer left out is reported by the bench as "skipped: not installed".
#   restic, borgbackup      the deduplicating backup tools, on their defaults
#   python3-freezer         freezer-agent 13 (OpenStack Freezer), the tool floe is compatible with
#   tar gzip pigz zstd openssl   the shell pipelines (tar -czf, tar | gzip -1, tar | pigz, tar | zstd | openssl)
#   rdiff                   librsync's CLI, for the rsync engine's comparisons
#   time                    GNU time (/usr/bin/time): user + sys CPU and peak RSS of each case
#   coreutils               timeout, sync, cp
set -euo pipefail
packages=(restic borgbackup python3-freezer tar gzip pigz zstd openssl rdiff time coreutils)
sudo=
if [ "$(id -u)" -ne 0 ]; then sudo=sudo; fi
$sudo apt-get update
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${packages[@]}"
