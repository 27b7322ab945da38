#!/bin/sh
# prebuildify calls "node-gyp rebuild ..."; we build with cmake-js instead (shared/TOOLCHAIN.md §3).
exec npx cmake-js rebuild
