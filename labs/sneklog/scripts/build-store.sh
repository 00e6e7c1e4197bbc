#!/bin/sh
# build-store.sh: builds the lab's S3 server, versitygw (Apache-2.0, a
# single Go binary that serves S3 from a folder), on the host from the Go
# module proxy into bin/versitygw, which the store role copies in. Run once
# before the first lab up; it does nothing when the binary is there.
set -eu
VERSION=v1.8.0
here=$(cd "$(dirname "$0")/.." && pwd)
out=$here/bin/versitygw
if [ -x "$out" ] && [ "$("$out" --version 2>/dev/null | grep -c "$VERSION")" -gt 0 ]; then
  exit 0
fi
mkdir -p "$here/bin"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
GOBIN=$tmp CGO_ENABLED=0 go install -trimpath -ldflags "-s -w -X main.Version=$VERSION" "github.com/versity/versitygw/cmd/versitygw@$VERSION"
mv "$tmp/versitygw" "$out"
echo "built $out ($VERSION)"
