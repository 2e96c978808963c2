"""scikit-learn's answers for the cases tests/metrics.rs writes: reads cases JSON from
argv[1], writes one dict of metric values per case to argv[2] (null where scikit-learn
refuses the input). Scores are float32 in Rust; they are compared here as float64, as
pcam computes."""
import json
import sys
import warnings

import numpy as np
from sklearn import metrics as m
from sklearn.calibration import calibration_curve

warnings.simplefilter("ignore")
cases = json.load(open(sys.argv[1]))
out = []
for c in cases:
    s = np.asarray(c["scores"], dtype=np.float32).astype(np.float64)
    y = np.asarray(c["labels"], dtype=np.int64)
    t = np.float64(np.float32(c["threshold"]))
    pred = (s >= t).astype(np.int64)
    r = {}

    def put(name, f):
        try:
            v = f()
            r[name] = v.tolist() if isinstance(v, np.ndarray) else (None if v is None else float(v))
        except ValueError:
            r[name] = None

    put("accuracy", lambda: m.accuracy_score(y, pred))
    put("precision", lambda: m.precision_score(y, pred, zero_division=0))
    put("recall", lambda: m.recall_score(y, pred, zero_division=0))
    put("specificity", lambda: m.recall_score(y, pred, pos_label=0, zero_division=0))
    put("f1", lambda: m.f1_score(y, pred, zero_division=0))
    put("f2", lambda: m.fbeta_score(y, pred, beta=2, zero_division=0))
    cm = m.confusion_matrix(y, pred, labels=[0, 1])
    r["confusion"] = {"tn": int(cm[0, 0]), "fp": int(cm[0, 1]), "fn": int(cm[1, 0]), "tp": int(cm[1, 1])}
    both = len(set(y.tolist())) == 2
    put("roc_auc", lambda: m.roc_auc_score(y, s) if both else None)
    if both:
        fpr, tpr, th = m.roc_curve(y, s, drop_intermediate=False)
        r["roc"] = {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "thresholds": th[1:].tolist()}
    else:
        r["roc"] = None
    if y.sum() > 0:
        p, rc, th = m.precision_recall_curve(y, s)
        r["pr"] = {"precision": p.tolist(), "recall": rc.tolist(), "thresholds": th.tolist()}
        put("average_precision", lambda: m.average_precision_score(y, s))
        put("pr_auc", lambda: m.auc(rc, p))
    else:
        r["pr"] = r["average_precision"] = r["pr_auc"] = None
    put("brier", lambda: m.brier_score_loss(y, s, pos_label=1))
    put("log_loss", lambda: m.log_loss(y, s, labels=[0, 1]))
    prob_true, prob_pred = calibration_curve(y, s, n_bins=10, strategy="uniform")
    r["calibration"] = {"fraction_positive": prob_true.tolist(), "mean_predicted": prob_pred.tolist()}
    # ECE from the same bins (scikit-learn has no ECE function): numpy, independently.
    edges = np.linspace(0.0, 1.0, 11)
    ids = np.searchsorted(edges[1:-1], s)
    ece = 0.0
    for b in range(10):
        k = ids == b
        if k.any():
            ece += k.sum() / len(s) * abs(y[k].mean() - s[k].mean())
    r["ece"] = float(ece)
    out.append(r)
json.dump(out, open(sys.argv[2], "w"))
