#!/usr/bin/env python3
"""Reads Prometheus text from two scrapes (before, after) and prints what the
benchmark needs: probe runs in between, and the p99 of the scheduler lateness
histogram over that window (as the upper bound of the bucket holding it).

usage: metrics.py BEFORE AFTER
"""
import re
import sys

LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$')


def parse(path):
    runs, buckets = 0.0, {}
    for line in open(path):
        m = LINE.match(line.strip())
        if not m:
            continue
        name, labels, value = m.group(1), m.group(2) or "", float(m.group(3))
        if name == "chatpulse_probe_runs_total":
            runs += value
        elif name == "chatpulse_scheduler_lateness_seconds_bucket":
            le = re.search(r'le="([^"]+)"', labels).group(1)
            buckets[float(le)] = value
    return runs, buckets


before_runs, before_b = parse(sys.argv[1])
after_runs, after_b = parse(sys.argv[2])
window = {le: after_b[le] - before_b.get(le, 0.0) for le in after_b}
total = window.get(float("inf"), 0.0)
p99 = float("nan")
for le in sorted(window):
    if total and window[le] >= 0.99 * total:
        p99 = le
        break
print(f"{after_runs - before_runs:.0f} {p99}")
