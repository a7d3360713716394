#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# make check-valgrind: the Criterion suites one at a time under valgrind
# memcheck, every test worker and every avm process they start traced
# (system programs, anything named *qemu*, the fault-injection helper, the
# Cuttlefish host tools' double avm-fakecf under the tools' names, and
# podman's quadlet generator, a Go program, are not), one log per process in
# LOGDIR/SUITE/ (paths made absolute: some tests run avm from another
# directory).  Suite by suite, so that a
# failure or a hang is located and the rest still runs.
#   valgrind-suite.sh TEST_BIN LOGDIR [SUITE...]   (default: every suite)
set -u
bin=$1
logs=$2
shift 2
case $logs in /*) ;; *) logs=$(pwd)/$logs ;; esac
here=$(cd "$(dirname "$0")" && pwd)
suites="$*"
if [ -z "$suites" ]; then
	suites=$("$bin" --list | sed -n 's/^\([A-Za-z0-9_]*\): [0-9]* tests\{0,1\}$/\1/p')
fi
fakecf="*/avm-fakecf"
for t in adb_connector config_server gnss_grpc_proxy kernel_log_monitor logcat_receiver modem_simulator \
	root-canal secure_env sensors_simulator socket_vsock_proxy tcp_connector tombstone_receiver \
	vhal_proxy_server vhost_device_vsock; do
	fakecf="$fakecf,*/bin/$t"
done
failed=""
for s in $suites; do
	rm -rf "${logs:?}/$s"
	mkdir -p "$logs/$s"
	start=$(date +%s)
	valgrind --tool=memcheck --trace-children=yes \
		--trace-children-skip="/usr/*,/bin/*,/sbin/*,*/avm-fakehelper,*qemu*,*/quadlet,$fakecf" \
		--child-silent-after-fork=yes --leak-check=full \
		--show-leak-kinds=definite,indirect,possible \
		--errors-for-leak-kinds=definite,indirect,possible \
		--suppressions="$here/valgrind.supp" --log-file="$logs/$s/%p.log" \
		"$bin" --filter "$s/*" >"$logs/$s/suite.out" 2>&1
	echo $? >"$logs/$s/suite.status"
	printf '%s (%s s): ' "$s" $(($(date +%s) - start))
	"$here/valgrind-report.sh" "$logs/$s" || failed="$failed $s"
done
if [ -n "$failed" ]; then
	echo "valgrind: failed:$failed (logs in $logs/SUITE/)" >&2
	exit 1
fi
echo "valgrind: every suite clean"
