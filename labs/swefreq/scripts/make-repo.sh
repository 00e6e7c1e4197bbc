#!/bin/sh
# make-repo.sh REPO: the app's Git repository (it stands in for the project's
# GitHub), made on the host from this lab's sources: branch master is app/,
# branch develop is master plus one commit with app-develop/ (the feature
# master lacks). Commits have fixed authors and dates, so the same sources
# give the same revisions on any machine. The deploy playbook runs it; it
# rebuilds the repository only when the sources changed, and two playbooks
# running at once share one build.
set -eu
repo=$1
lab=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$(dirname "$repo")"
sum=$(cd "$lab" && find app app-develop -type f -not -path "*/__pycache__/*" | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16)
exec 9>"$repo.lock"
flock 9
if [ "$(cat "$repo/lab-sources" 2>/dev/null)" = "$sum" ]; then
  exit 0
fi
tmp=$(mktemp -d "$repo.new.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export GIT_AUTHOR_NAME="SweFreq developers" GIT_AUTHOR_EMAIL=swefreq@swefreq.lab
export GIT_COMMITTER_NAME="$GIT_AUTHOR_NAME" GIT_COMMITTER_EMAIL="$GIT_AUTHOR_EMAIL"
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
git init -q -b master "$tmp/work"
cp -R "$lab/app/." "$tmp/work/"
cd "$tmp/work"
rm -rf __pycache__
git add -A
GIT_AUTHOR_DATE="2026-01-05T10:00:00Z" GIT_COMMITTER_DATE="2026-01-05T10:00:00Z" \
  git commit -q -m "SweFreq: search variants by position, range or id; log in"
git switch -q -c develop
cp -R "$lab/app-develop/." "$tmp/work/"
rm -rf __pycache__
git add -A
GIT_AUTHOR_DATE="2026-02-02T10:00:00Z" GIT_COMMITTER_DATE="2026-02-02T10:00:00Z" \
  git commit -q -m "Show the mean coverage beside each variant; /api/coverage for a region"
git clone -q --bare "$tmp/work" "$tmp/bare"
echo "$sum" > "$tmp/bare/lab-sources"
rm -rf "$repo"
mv "$tmp/bare" "$repo"
echo "made $repo: master $(git --git-dir="$repo" rev-parse --short master), develop $(git --git-dir="$repo" rev-parse --short develop)"
