#!/usr/bin/env bash
# Generates the Python stubs of proto/ into examples/python/gen/ with Debian's protoc and gRPC plugin
# (packages protobuf-compiler, protobuf-compiler-grpc, python3-grpcio, python3-protobuf).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
proto="$here/../../proto"
plugin="$(command -v grpc_python_plugin || true)"
if [ -z "$plugin" ]; then
  echo "grpc_python_plugin not found: apt-get install protobuf-compiler protobuf-compiler-grpc" >&2
  exit 1
fi
rm -rf "$here/gen"
mkdir -p "$here/gen"
protoc -I "$proto" \
  --python_out="$here/gen" \
  --grpc_python_out="$here/gen" \
  --plugin=protoc-gen-grpc_python="$plugin" \
  $(cd "$proto" && find payments google -name '*.proto' | sort)
# No __init__.py files: gen/google must stay a namespace package beside the installed google.protobuf.
echo "generated Python stubs in $here/gen"
