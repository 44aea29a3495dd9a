"""SciPy's paired t-test and Wilcoxon signed-rank test on the fixed table of tests/statistics.rs,
as JSON: the independent reference WSA Lab's own statistics (core/src/experiment/stats.rs) are
checked against. Reads the table as JSON on stdin: {"name": [[x, y], ...], ...}."""

import json
import sys

from scipy import stats

table = json.load(sys.stdin)
out = {}
for name, pairs in table.items():
    x = [p[0] for p in pairs]
    y = [p[1] for p in pairs]
    t = stats.ttest_rel(x, y)
    ci = t.confidence_interval(0.95)
    w = stats.wilcoxon(x, y)
    out[name] = {
        "t_p": float(t.pvalue),
        "low": float(ci.low),
        "high": float(ci.high),
        "wilcoxon_statistic": float(w.statistic),
        "wilcoxon_p": float(w.pvalue),
    }
json.dump(out, sys.stdout)
