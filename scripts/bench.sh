#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make bench: FDBox's memfd path against LUO's on the release kernel
# (selftests/bench/fdbox_memfd_bench.c: two VMs, three KHO kexecs in all), as
# one table with the ratio FDBox/LUO on every row; then an unmodified QEMU
# guest's blackout, FDBox against a file with RAM copied
# (selftests/qemu/qemu_bench.sh); then FDBox alone on hugetlb memfds, which
# LUO can't carry, against FDBox's THP rows and the file route's copy.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

flavour=release
release_guest
logs=$FDBOX_BUILD/logs/bench
rm -rf "$logs"

# Two VMs; the program sets where each memfd's folios sit (see
# selftests/bench/fdbox_memfd_bench.c). The ample run (12 GiB, KHO scratch
# 384 MiB) keeps both copies out of scratch, with room for three repetitions
# of the largest memfds; the pressure run (8 GiB, scratch 1.75 GiB) puts both
# copies in scratch; the vCPU runs (12 GiB, to hold three pairs of 1 GiB
# memfds) measure the same cases on 1 vCPU and on 4.
note "running the benchmark VMs (about fifteen minutes under TCG)"
status=0
# make bench CASE=NAME: only that row, in every run that has it.
only=${FDBOX_BENCH_CASE:+ fdbox.bench.case=$FDBOX_BENCH_CASE}
run() {
	local name=$1 stages=$2 memory=$3 append="$4$only" cpus=${5:-2}
	"$vmrun" run $accel --flavour "$flavour" --kernel "$kernel" --initrd "$initrd" \
		--tests /bench --stages "$stages" --memory "$memory" --cpus "$cpus" \
		--timeout 3600 --silence 600 \
		--append "$append" --log-dir "$logs/$name" >"$logs/$name.out" 2>&1 || status=1
	cat "$logs/$name.out"
}
mkdir -p "$logs"
run ample 3 12288 "kho_scratch=64M,256M,64M fdbox.bench=ample"
run pressure 2 8192 "kho_scratch=128M,1536M,128M fdbox.bench=pressure"
# QEMU's multi-threaded TCG runs each vCPU in a thread of its own.
run vcpus1 2 12288 "kho_scratch=64M,256M,64M fdbox.bench=vcpus" 1
run vcpus4 2 12288 "kho_scratch=64M,256M,64M fdbox.bench=vcpus" 4

grep -h '^# bench\(-seal\)\?: ' "$logs"/*/results.log |
	awk -f "$FDBOX_ROOT/scripts/bench-table.awk" || status=1

# The blackout rows: unmodified QEMUs in a VM of 8 GiB, so that the largest
# guest fits three times (boxed, and the file route's guest and file). KHO
# scratch is small (384 MiB), as in the ample run, so that guest RAM stays
# out of it: a folio in scratch costs a migration at ADD, whose speed and
# placement are measured apart (the rows print how many were migrated).
note "running the QEMU blackout VM (two stages)"
qemu_initrd=$("$FDBOX_ROOT/scripts/initramfs-qemu.sh" "$flavour")
"$vmrun" run $accel --flavour "$flavour" --kernel "$kernel" --initrd "$qemu_initrd" \
	--tests /qemu-bench --stages 2 --memory 8192 --timeout 2400 --silence 600 \
	--append "kho_scratch=64M,256M,64M" \
	--log-dir "$logs/qemu" >"$logs/qemu.out" 2>&1 || status=1
cat "$logs/qemu.out"
# The lines come as KTAP diagnostics ("# # bench-qemu: ...").
# The runner prints when stage 1 ended and stage 2 began, in seconds.
kexec_ms=$(awk '/s  stage 1 done, kexec$/ { a = $1 } /s  kexec to stage 2$/ { b = $1 }
	END { if (a != "" && b != "") printf "%.0f", (b - a) * 1000 }' "$logs/qemu.out")
sed -n 's/^[# ]*\(# bench-qemu: \)/\1/p' "$logs/qemu/results.log" |
	awk -v kexec_ms="$kexec_ms" -f "$FDBOX_ROOT/scripts/bench-qemu.awk" || status=1

# The hugetlb rows ("# bench-hugetlb:" lines, kept out of the FDBox/LUO table
# above): FDBox alone, since LUO can't carry a hugetlb memfd. Each is compared
# with FDBox's own THP row of the same size from the same VM run (its "vs="),
# and with the QEMU file route's copy (migrate + load) of a guest of the same
# size from the blackout VM; "n/a" where the run has no such row.
awk '
function median(list,    v, n, i, j, t) {
	n = split(list, v, " ")
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) {
			t = v[j]; v[j] = v[j - 1]; v[j - 1] = t
		}
	if (!n)
		return 0
	return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
function spread(list,    v, n, i, lo, hi, m) {
	n = split(list, v, " ")
	if (!n)
		return 0
	lo = hi = v[1] + 0
	for (i = 2; i <= n; i++) {
		if (v[i] + 0 < lo) lo = v[i] + 0
		if (v[i] + 0 > hi) hi = v[i] + 0
	}
	m = median(list)
	return m > 0 ? 100 * (hi - lo) / m : 0
}
function add(arr, k, v) { if (k in arr) arr[k] = arr[k] " " v; else arr[k] = v }
function fmt(v, f) { return v == "" ? "n/a" : sprintf(f, v) }
function parse(from,    i, p) {
	delete kv
	for (i = from; i <= NF; i++) {
		split($i, p, "=")
		kv[p[1]] = p[2]
	}
}
$1 == "#" && $2 == "bench:" {
	parse(3)
	k = FILENAME SUBSEP kv["regime"] SUBSEP kv["case"]
	if (kv["stage"] == "preserve") {
		tsize[k] = kv["size_mib"]
		add(tp, k, kv["fdbox_us"]); add(tm, k, kv["fdbox_meta"])
	} else {
		add(tq, k, kv["fdbox_us"])
	}
	next
}
$1 == "#" && $2 == "bench-hugetlb:" {
	parse(3)
	k = FILENAME SUBSEP kv["regime"] SUBSEP kv["case"]
	if (!(k in seen)) {
		seen[k] = 1
		order[n++] = k
	}
	if (kv["vs"] != "")
		vs[k] = kv["vs"]
	if (kv["stage"] == "pool") {
		if (kv["got"] != kv["want"] || kv["free"] != kv["want"])
			pool_short[k] = pool_short[k] sprintf(", POOL SHORT at %s: %s pages, %s free, of %s",
				kv["phase"], kv["got"], kv["free"], kv["want"])
	} else if (kv["stage"] == "preserve") {
		size[k] = kv["size_mib"]
		add(pf, k, kv["fdbox_us"]); add(mf, k, kv["fdbox_meta"])
		add(mig, k, kv["migrated"])
		if (kv["migrated"] > 0)
			moved[k] = 1
	} else if ("error" in kv) {
		failed[k]++
	} else {
		add(rf, k, kv["fdbox_us"])
		reps[k]++
		if (!kv["fdbox_ok"])
			bad[k] = 1
		if (!kv["pool_ok"])
			badpool[k] = 1
	}
	next
}
# The blackout VM, KTAP diagnostics: "# # bench-qemu: route=file mib=N ...".
/^[# ]*# bench-qemu: route=file / {
	sub(/^[# ]*# bench-qemu: /, "")
	parse(1)
	if (kv["migrate"] != "" && kv["load"] != "")
		file_ms[kv["mib"]] = kv["migrate"] + kv["load"]
}
END {
	if (!n)
		exit 0
	printf "\nFDBox alone on hugetlb memfds (MFD_HUGETLB, 2 MiB pages): LUO cannot carry them (memfd_luo_can_preserve takes shmem only), so no LUO column and no FDBox/LUO ratio\n"
	printf "(times in ms, the median of the repetitions; \"vs FDBox THP\" = hugetlb / FDBox'"'"'s own THP row of the same size from the same VM run;\n"
	printf " \"vs file copy\" = (preserve + retrieve) / the QEMU file route'"'"'s migrate + load of a guest of the same size, in the blackout VM;\n"
	printf " lower is better; n/a: the run has no such row)\n\n"
	printf "%-8s %-16s %5s | %9s %9s %12s %8s | %9s %9s %12s %8s | %10s %9s %12s | %9s %12s | %s\n",
		"regime", "case", "MiB", "preserve", "FDBox THP", "vs FDBox THP", "spread %",
		"retrieve", "FDBox THP", "vs FDBox THP", "spread %", "meta B/GiB", "FDBox THP",
		"vs FDBox THP", "file copy", "vs file copy", "notes"
	status = 0
	for (i = 0; i < n; i++) {
		k = order[i]
		split(k, rc, SUBSEP)
		ref = rc[1] SUBSEP rc[2] SUBSEP vs[k]
		p = q = m = t1 = t2 = t3 = r1 = r2 = r3 = fc = r4 = ""
		note = ""
		if (k in pf) {
			p = median(pf[k]) / 1000
			m = median(mf[k]) * 1024 / size[k]
		}
		if (k in rf)
			q = median(rf[k]) / 1000
		# Only FDBox'"'"'s THP row of the same size, from the same VM run.
		if ((k in size) && !(ref in tsize))
			note = note ", no " vs[k] " row in this run"
		else if ((k in size) && tsize[ref] != size[k])
			note = note ", " vs[k] " is " tsize[ref] " MiB"
		else if (k in size) {
			t1 = median(tp[ref]) / 1000
			t3 = median(tm[ref]) * 1024 / tsize[ref]
			if (ref in tq)
				t2 = median(tq[ref]) / 1000
			if (p != "" && t1 > 0) r1 = p / t1
			if (q != "" && t2 != "" && t2 > 0) r2 = q / t2
			if (m != "" && t3 > 0) r3 = m / t3
		}
		if ((k in size) && (size[k] in file_ms)) {
			fc = file_ms[size[k]]
			if (p != "" && q != "" && fc > 0) r4 = (p + q) / fc
		}
		if (!(k in reps))
			note = ", not retrieved" note
		else
			note = ((k in bad) ? ", DATA MISMATCH" : sprintf(", data verified x%d", reps[k])) note
		if (k in failed)
			note = note sprintf(", RETRIEVE FAILED x%d", failed[k])
		if (k in badpool)
			note = note ", POOL COUNTERS WRONG after RETRIEVE"
		note = note pool_short[k]
		if (k in moved)
			note = note ", folios ADD moved out of KHO scratch: " mig[k]
		if (!(k in reps) || (k in bad) || (k in failed) || (k in badpool) || pool_short[k] != "")
			status = 1
		printf "%-8s %-16s %5s | %9s %9s %12s %8s | %9s %9s %12s %8s | %10s %9s %12s | %9s %12s | %s\n",
			rc[2], rc[3], (k in size) ? size[k] : "-",
			fmt(p, "%.2f"), fmt(t1, "%.2f"), fmt(r1, "%.2f"), (k in pf) ? sprintf("%.0f", spread(pf[k])) : "n/a",
			fmt(q, "%.2f"), fmt(t2, "%.2f"), fmt(r2, "%.2f"), (k in rf) ? sprintf("%.0f", spread(rf[k])) : "n/a",
			fmt(m, "%.0f"), fmt(t3, "%.0f"), fmt(r3, "%.3f"), fmt(fc, "%.1f"), fmt(r4, "%.3f"),
			substr(note, 3)
	}
	exit status
}' "$logs"/*/results.log || status=1
exit "$status"
