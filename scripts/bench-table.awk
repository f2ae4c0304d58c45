# SPDX-License-Identifier: GPL-2.0
# Joins the "# bench: key=value ..." lines of both stages of every case, one
# per repetition, into the table make bench prints: the median of the
# repetitions on each side, their spread, the FDBox/LUO ratio of the medians,
# and the worst ratio of each column. A "# bench-seal:" line gives the SEAL
# scaling line.

function ratio(a, b) { return b > 0 ? a / b : 0 }
function worst(name, r) { if (r > max[name]) max[name] = r }

# The median of the n values "v1 v2 ...", space-separated.
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

# The spread of "v1 v2 ...": (largest - smallest) / median, in percent.
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

function add(arr, k, v) { arr[k] = (k in arr) ? arr[k] " " v : v }

$2 == "bench-seal:" {
	for (i = 3; i <= NF; i++) {
		split($i, p, "=")
		seal[p[1]] = p[2]
	}
	next
}

{
	delete kv
	for (i = 3; i <= NF; i++) {
		split($i, p, "=")
		kv[p[1]] = p[2]
	}
	if (kv["case"] == "warmup")
		next
	key = kv["regime"] " " kv["case"]
	if (!(key in seen)) {
		seen[key] = 1
		order[n++] = key
	}
	if (kv["stage"] == "preserve") {
		size[key] = kv["size_mib"]
		add(pf, key, kv["fdbox_us"]); add(pl, key, kv["luo_us"])
		add(mf, key, kv["fdbox_meta"]); add(ml, key, kv["luo_meta"])
		add(kf, key, kv["fdbox_kib"]); add(kl, key, kv["luo_kib"])
		add(sf, key, kv["fdbox_scratch"]); add(sl, key, kv["luo_scratch"])
		add(mig, key, kv["migrated"])
	} else {
		add(rf, key, kv["fdbox_us"]); add(rl, key, kv["luo_us"])
		reps[key]++
		if (!(kv["fdbox_ok"] && kv["luo_ok"]))
			bad[key] = 1
	}
}

END {
	if (!n) {
		print "bench: no measurements came out of the VM; see build/logs/bench"
		exit 1
	}
	printf "\nFDBox vs LUO, memfd, release kernel, same VMs for both: the median of each side's repetitions\n"
	printf "(times in ms; ratio = FDBox/LUO, lower is better; spread = (max - min) / median of FDBox's, LUO's repetitions)\n\n"
	printf "%-8s %-14s %5s | %9s %9s %5s %9s | %9s %9s %5s %9s | %10s %9s %6s | %7s %7s | %s\n",
		"regime", "case", "MiB", "preserve", "LUO", "ratio", "spread %", "retrieve", "LUO",
		"ratio", "spread %", "meta B/GiB", "LUO", "ratio", "MiB", "LUO", "notes"
	for (i = 0; i < n; i++) {
		k = order[i]
		split(k, rc, " ")
		gib = size[k] > 0 ? 1024 / size[k] : 0
		p1 = median(pf[k]); p2 = median(pl[k]); q1 = median(rf[k]); q2 = median(rl[k])
		m1 = median(mf[k]); m2 = median(ml[k])
		r1 = ratio(p1, p2); r2 = ratio(q1, q2); r3 = ratio(m1, m2)
		worst("preserve", r1); worst("retrieve", r2); worst("metadata", r3)
		if (!(k in reps))
			note = "not retrieved"
		else
			note = (k in bad) ? "DATA MISMATCH" : sprintf("data verified x%d", reps[k])
		s1 = median(sf[k]); s2 = median(sl[k])
		if (s1 > 0 || s2 > 0) {
			note = note sprintf(", folios in scratch %d / %d (FDBox moved %d)",
				s1, s2, median(mig[k]))
			perf[k] = sprintf("%.2f / %.2f", s1 > 0 ? p1 / 1000 / s1 : 0,
				s2 > 0 ? p2 / 1000 / s2 : 0)
		}
		printf "%-8s %-14s %5d | %9.2f %9.2f %5.2f %4.0f/%-4.0f | %9.2f %9.2f %5.2f %4.0f/%-4.0f | %10.0f %9.0f %6.3f | %7.1f %7.1f | %s\n",
			rc[1], rc[2], size[k], p1 / 1000, p2 / 1000, r1, spread(pf[k]), spread(pl[k]),
			q1 / 1000, q2 / 1000, r2, spread(rf[k]), spread(rl[k]),
			m1 * gib, m2 * gib, r3, median(kf[k]) / 1024, median(kl[k]) / 1024, note
	}
	printf "\nworst ratios: preserve %.2f, retrieve %.2f, metadata %.3f (target: 0.80, 0.80, 0.25)\n",
		max["preserve"], max["retrieve"], max["metadata"]
	for (i = 0; i < n; i++) {
		k = order[i]
		split(k, rc, " ")
		if (rc[1] != "1vcpu")
			continue
		# The most vCPUs the guest brought online (its kernel's NR_CPUS may cap them).
		for (cpus = 64; cpus > 1 && !((cpus "vcpu " rc[2]) in seen); cpus--)
			;
		if (cpus == 1)
			continue
		k4 = cpus "vcpu " rc[2]
		printf "%s on %d vCPUs against 1: preserve %.2fx, retrieve %.2fx faster for FDBox; %.2fx, %.2fx for LUO\n",
			rc[2], cpus, ratio(median(pf[k]), median(pf[k4])), ratio(median(rf[k]), median(rf[k4])),
			ratio(median(pl[k]), median(pl[k4])), ratio(median(rl[k]), median(rl[k4]))
	}
	for (k in perf)
		printf "migration out of KHO scratch, %s: %s ms of preserve per folio in scratch, FDBox / LUO\n", k, perf[k]
	if ("boxes" in seal)
		printf "SEAL of a box of one page (median of 5 in a row): 1st %.2f ms, 100th %.2f ms, %dth %.2f ms (%.1fx the 1st; target at most 2x); CANCEL with %d boxes sealed %.2f ms, with 5 %.2f ms\n",
			seal["seal_1_us"] / 1000, seal["seal_100_us"] / 1000, seal["boxes"],
			seal["seal_last_us"] / 1000, ratio(seal["seal_last_us"], seal["seal_1_us"]),
			seal["boxes"], seal["cancel_all_us"] / 1000, seal["cancel_few_us"] / 1000
}
