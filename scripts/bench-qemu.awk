# SPDX-License-Identifier: GPL-2.0
# Joins the "# bench-qemu: key=value ..." lines of selftests/qemu/qemu_bench.sh
# into the blackout rows of make bench: FDBox's route against the file route,
# per guest size, with the ratio FDBox/file; the kexec (-v kexec_ms=..., from
# the runner's stage times) is printed apart, since both routes pay it.

{
	delete kv
	for (i = 3; i <= NF; i++) {
		split($i, p, "=")
		kv[p[1]] = p[2]
	}
	m = kv["mib"]
	for (k in kv)
		if (kv[k] == "")
			broken[m] = 1
	if (!(m in seen)) {
		seen[m] = 1
		order[n++] = m
	}
	r = kv["route"]
	if (r == "file") {
		file[m] = kv["stop"] + kv["migrate"] + kv["qemu-start"] + kv["load"] + kv["cont"]
		fstart[m] = kv["qemu-start"]
		fbytes[m] = kv["state_bytes"]
	} else if (r == "fdbox-save") {
		save[m] = kv["stop"] + kv["migrate"] + kv["box"] + kv["meta"] + kv["seal"]
		bbytes[m] = kv["state_bytes"]
		folios[m] = kv["folios"]; large[m] = kv["large"]; migrated[m] = kv["migrated"]
	} else if (r == "fdbox-restore") {
		restore[m] = kv["check"] + kv["retrieve"] + kv["qemu-start"] + kv["load"] + kv["cont"]
		bstart[m] = kv["qemu-start"]
	}
}

END {
	if (!n) {
		print "bench: no QEMU blackout measurements came out of the VM; see build/logs/bench"
		exit 1
	}
	printf "\nBlackout of an unmodified QEMU guest, FDBox vs a file with RAM copied, same VM run (ms; ratio = FDBox/file, lower is better)\n\n"
	printf "%7s | %9s %9s %6s | %10s %11s | %11s %11s | %s\n", "MiB", "FDBox", "file", "ratio",
		"state B", "file B", "QEMU start", "(file)", "RAM folios (large, migrated out of KHO scratch)"
	status = 0
	for (i = 0; i < n; i++) {
		m = order[i]
		if (!(m in save) || !(m in restore) || !(m in file) || (m in broken)) {
			printf "%7s | incomplete: see build/logs/bench\n", m
			status = 1
			continue
		}
		b = save[m] + restore[m]
		r = file[m] > 0 ? b / file[m] : 0
		printf "%7s | %9.1f %9.1f %6.3f | %10.0f %11.0f | %11.1f %11.1f | %d (%d, %d)\n", m, b, file[m], r,
			bbytes[m], fbytes[m], bstart[m], fstart[m], folios[m], large[m], migrated[m]
		if (i == 0)
			first = b
		last = b
		lastr = r
		lastm = m
	}
	if (status)
		exit status
	flat = first > 0 ? last / first : 0
	printf "\nFDBox's blackout from %s MiB to %s MiB: %.2fx (target at most 1.2x): %s\n", order[0], lastm, flat,
		flat <= 1.2 ? "met" : "NOT met"
	printf "ratio at %s MiB: %.3f (target at most 0.2): %s\n", lastm, lastr, lastr <= 0.2 ? "met" : "NOT met"
	printf "QEMU's own start-up is in both routes (the QEMU start columns); of FDBox's blackout it is"
	for (i = 0; i < n; i++) {
		m = order[i]
		b = save[m] + restore[m]
		printf "%s %.0f%% at %s MiB", (i ? "," : ""), (b > 0 ? 100 * bstart[m] / b : 0), m
	}
	printf ".\n"
	if (kexec_ms != "")
		printf "kexec, apart (both routes pay it): %.0f ms, from stage 1's end to stage 2's start\n", kexec_ms
}
