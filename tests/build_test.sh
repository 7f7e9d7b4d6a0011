#!/usr/bin/env bash
# build_test.sh - the build follows its flags: an object compiled with other flags (say
# EXTRA_CFLAGS=-DSP_DEBUG=1 over a plain build) is compiled again, and one whose flags did not
# change is not. Runs the Makefile on a copy of the sources in a scratch folder, so the real
# build/ is left alone; a few C objects only (the plain rule, gotiered's .mk rule).
set -u
cd "$(dirname "$0")/.."
. tests/test_lib.sh

mkdir -p "$t/src"
cp -r Makefile allocators workloads harness preload tools "$t/src/"
objs="build/obj/workloads/request.o build/obj/allocators/gotiered/tiny.o"

# build ARGS...: make the objects with these make arguments; prints which of them compiled
# (or why make failed, which no check below expects).
build() {
    make --no-print-directory -C "$t/src" "$@" $objs >"$t/make.log" 2>&1 ||
        { echo "make failed: $(tail -n 3 "$t/make.log")"; return; }
    for o in $objs; do
        local src=${o#build/obj/}
        grep -q -- "-c ${src%.o}.c" "$t/make.log" && printf '%s ' "$(basename "$o")"
    done
    echo
}

r=$(build)
[ "$r" = "request.o tiny.o " ] && ok "first build compiles both" || bad "first build compiled: '$r'"
r=$(build)
[ "$r" = "" ] && ok "same flags again: nothing compiled" || bad "same flags compiled: '$r'"
r=$(build EXTRA_CFLAGS=-DALLOCLAB_BUILD_TEST=1)
[ "$r" = "request.o tiny.o " ] && ok "EXTRA_CFLAGS added: both compiled again" ||
    bad "EXTRA_CFLAGS added compiled: '$r'"
grep -qs -- '-DALLOCLAB_BUILD_TEST=1' "$t/src/build/gen/flags.stamp" &&
    ok "the stamp records the flags" || bad "stamp: $(cat "$t/src/build/gen/flags.stamp" 2>&1)"
r=$(build EXTRA_CFLAGS=-DALLOCLAB_BUILD_TEST=1)
[ "$r" = "" ] && ok "the new flags again: nothing compiled" || bad "new flags again compiled: '$r'"
r=$(build OPT=-O1 EXTRA_CFLAGS=-DALLOCLAB_BUILD_TEST=1)
[ "$r" = "request.o tiny.o " ] && ok "OPT changed: both compiled again" || bad "OPT changed compiled: '$r'"
r=$(build)
[ "$r" = "request.o tiny.o " ] && ok "back to the defaults: both compiled again" ||
    bad "back to the defaults compiled: '$r'"

echo "build_test: $pass passed, $fail failed"
[ $fail -eq 0 ]
