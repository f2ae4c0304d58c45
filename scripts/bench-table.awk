# SPDX-License-Identifier: GPL-2.0
# Joins the "# bench: key=value ..." lines of both stages of every case into
# the table make bench prints, with FDBox/LUO ratios and the worst of each.

function ratio(a, b) { return b > 0 ? a / b : 0 }
function worst(name, r) { if (r > max[name]) max[name] = r }

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
		pf[key] = kv["fdbox_us"]; pl[key] = kv["luo_us"]
		mf[key] = kv["fdbox_meta"]; ml[key] = kv["luo_meta"]
		kf[key] = kv["fdbox_kib"]; kl[key] = kv["luo_kib"]
		mig[key] = kv["migrated"]
	} else {
		rf[key] = kv["fdbox_us"]; rl[key] = kv["luo_us"]
		ok[key] = kv["fdbox_ok"] && kv["luo_ok"]
	}
}

END {
	if (!n) {
		print "bench: no measurements came out of the VM; see build/logs/bench"
		exit 1
	}
	printf "\nFDBox vs LUO, memfd, release kernel, same VMs for both (times in ms; ratio = FDBox/LUO, lower is better)\n\n"
	printf "%-9s %-12s %6s | %9s %9s %6s | %9s %9s %6s | %10s %10s %6s | %8s %8s | %s\n",
		"regime", "case", "MiB", "preserve", "LUO", "ratio", "retrieve", "LUO",
		"ratio", "meta B/GiB", "LUO", "ratio", "MiB used", "LUO", "notes"
	for (i = 0; i < n; i++) {
		k = order[i]
		split(k, rc, " ")
		gib = size[k] > 0 ? 1024 / size[k] : 0
		r1 = ratio(pf[k], pl[k]); r2 = ratio(rf[k], rl[k])
		r3 = ratio(mf[k], ml[k])
		worst("preserve", r1); worst("retrieve", r2); worst("metadata", r3)
		note = (k in ok) ? (ok[k] ? "data verified" : "DATA MISMATCH") : "not retrieved"
		if (mig[k] > 0)
			note = note sprintf(", FDBox moved %d folios out of scratch", mig[k])
		printf "%-9s %-12s %6d | %9.2f %9.2f %6.2f | %9.2f %9.2f %6.2f | %10.0f %10.0f %6.3f | %8.1f %8.1f | %s\n",
			rc[1], rc[2], size[k], pf[k] / 1000, pl[k] / 1000, r1,
			rf[k] / 1000, rl[k] / 1000, r2, mf[k] * gib, ml[k] * gib, r3,
			kf[k] / 1024, kl[k] / 1024, note
	}
	printf "\nworst ratios: preserve %.2f, retrieve %.2f, metadata %.3f (target: 0.80, 0.80, 0.25)\n",
		max["preserve"], max["retrieve"], max["metadata"]
}
