#!/usr/bin/env bash
# Re-fetch the vendored htmx from the npm registry. htmx is pinned to major
# version 2: npm's "latest" is htmx 4, a rewrite with other attributes and
# headers (flask-htmx reads htmx 2's). The file name carries the version.
set -euo pipefail
VERSION="${1:-2.0.11}"
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "htmx.org@${VERSION}" >/dev/null && tar -xzf "htmx.org-${VERSION}.tgz")
cp "$work/package/dist/htmx.min.js" "static/htmx-${VERSION}.min.js"
echo "static/htmx-${VERSION}.min.js updated; update the <script> tag in templates/base.html if the version changed."
