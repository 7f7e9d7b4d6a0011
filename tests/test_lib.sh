# test_lib.sh - sourced by the shell tests: a scratch folder $t (removed at exit), the pass and
# fail counts, and the check every command-line tool owes bad input.
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
pass=0 fail=0
ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }

# expect_usage_error LABEL CMD...: CMD must exit 2 with exactly one line on stderr and nothing
# on stdout.
expect_usage_error() {
    local label=$1 rc=0
    shift
    "$@" >"$t/o" 2>"$t/e" || rc=$?
    if [ $rc -eq 2 ] && [ "$(wc -l <"$t/e")" -eq 1 ] && [ ! -s "$t/o" ]; then
        ok "$label: one line, status 2"
    else
        bad "$label: rc=$rc, $(head -c 200 "$t/e")"
    fi
}
