#!/usr/bin/env bash
# floe's main job on the embedded defaults (local storage): back up a sample tree, change it, back it up
# again (level 1), restore the latest state into a fresh directory and check it is identical.
# Everything happens under one temporary directory, printed at the start; nothing else is touched.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
floe="node $here/bin/floe.js"
work=${FLOE_DEMO_DIR:-$(mktemp -d /tmp/floe-demo.XXXXXX)}
echo "demo directory: $work"
src=$work/sample; store=$work/backups; out=$work/restored
rm -rf "$src" "$store" "$out"; mkdir -p "$src/docs" "$src/bin" "$src/empty"
for i in $(seq 1 200); do printf 'line %s of a sample text file\n' $(seq 1 $i) > "$src/docs/note-$i.txt"; done
head -c 3000000 /dev/urandom > "$src/bin/random.bin"
ln -s docs/note-1.txt "$src/link-to-note"
ln "$src/docs/note-2.txt" "$src/hardlink-to-note-2"
echo 'Grüße, 世界' > "$src/docs/unicode-ñame.txt"
sleep 1.1  # files written in the second before a backup are stored again by the next level (safety margin)
printf 'demo-password\n' > "$work/pass"; chmod 600 "$work/pass"

echo "== level 0 backup (gzip, encrypted)"
$floe backup --path-to-backup "$src" --container "$store" --backup-name demo --encrypt-pass-file "$work/pass"
sleep 1.1
echo "change a file, delete one, rename one, add one"
echo "changed" >> "$src/docs/note-3.txt"; rm "$src/docs/note-4.txt"
mv "$src/docs/note-5.txt" "$src/docs/renamed-5.txt"; echo new > "$src/new-file.txt"
echo "== level 1 backup"
$floe backup --path-to-backup "$src" --container "$store" --backup-name demo --encrypt-pass-file "$work/pass"
echo "== what is stored"
$floe info --container "$store"
echo "== restore the latest state"
$floe restore --container "$store" --backup-name demo --restore-abs-path "$out" --encrypt-pass-file "$work/pass"
if diff -r --no-dereference "$src" "$out" >/dev/null; then
  echo "OK: the restored tree is identical to the source ($out)"
else
  echo "FAILED: the restored tree differs:"; diff -r --no-dereference "$src" "$out" | head -20; exit 1
fi
