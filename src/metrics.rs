//! Metrics over plain slices: probabilities/scores and 0/1 labels in, numbers out.
//! No tch and no other pcam module here, so every stage (training, evaluation,
//! slicing, search) computes a metric the same way.

/// A metric as printed by the CLI: `0.1234`, or `n/a` where it is undefined (ROC-AUC and
/// average precision need both classes).
pub fn show(v: Option<f64>) -> String {
    v.map(|a| format!("{a:.4}")).unwrap_or_else(|| "n/a".into())
}

/// Fraction of correct labels when predicting 1 for probability >= `threshold`.
pub fn accuracy(probs: &[f32], labels: &[u8], threshold: f32) -> f64 {
    assert_eq!(probs.len(), labels.len(), "one probability per label");
    if probs.is_empty() {
        return f64::NAN;
    }
    let ok = probs
        .iter()
        .zip(labels)
        .filter(|(&p, &l)| (p >= threshold) == (l == 1))
        .count();
    ok as f64 / probs.len() as f64
}

/// Mean binary cross-entropy of probabilities (clamped away from 0 and 1).
pub fn log_loss(probs: &[f32], labels: &[u8]) -> f64 {
    assert_eq!(probs.len(), labels.len(), "one probability per label");
    let eps = 1e-7f64;
    let sum: f64 = probs
        .iter()
        .zip(labels)
        .map(|(&p, &l)| {
            let p = (p as f64).clamp(eps, 1.0 - eps);
            if l == 1 {
                -p.ln()
            } else {
                -(1.0 - p).ln()
            }
        })
        .sum();
    sum / probs.len().max(1) as f64
}

/// Counts at one decision threshold (predict 1 when the score is at least the threshold).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Confusion {
    pub tp: u64,
    pub fp: u64,
    pub tn: u64,
    pub fn_: u64,
}

/// `a / b`, or 0 when `b` is 0 (scikit-learn's `zero_division=0`).
fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

impl Confusion {
    /// Counts for `scores >= threshold`.
    pub fn at(scores: &[f32], labels: &[u8], threshold: f32) -> Confusion {
        assert_eq!(scores.len(), labels.len(), "one score per label");
        let mut c = Confusion::default();
        for (&s, &l) in scores.iter().zip(labels) {
            match (s >= threshold, l == 1) {
                (true, true) => c.tp += 1,
                (true, false) => c.fp += 1,
                (false, false) => c.tn += 1,
                (false, true) => c.fn_ += 1,
            }
        }
        c
    }

    pub fn total(&self) -> u64 {
        self.tp + self.fp + self.tn + self.fn_
    }

    pub fn accuracy(&self) -> f64 {
        ratio(self.tp + self.tn, self.total())
    }

    /// TP / (TP + FP); 0 when nothing is predicted positive.
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }

    /// TP / (TP + FN), the sensitivity; 0 when there are no positives.
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }

    /// TN / (TN + FP); 0 when there are no negatives.
    pub fn specificity(&self) -> f64 {
        ratio(self.tn, self.tn + self.fp)
    }

    /// F-beta: (1 + β²)·TP / ((1 + β²)·TP + β²·FN + FP); 0 when TP is 0.
    pub fn f_beta(&self, beta: f64) -> f64 {
        let b2 = beta * beta;
        let num = (1.0 + b2) * self.tp as f64;
        let den = num + b2 * self.fn_ as f64 + self.fp as f64;
        if den == 0.0 {
            0.0
        } else {
            num / den
        }
    }

    pub fn f1(&self) -> f64 {
        self.f_beta(1.0)
    }

    /// Youden's J: recall + specificity − 1.
    pub fn youden(&self) -> f64 {
        self.recall() + self.specificity() - 1.0
    }
}

/// Scores sorted descending with their labels, and the cumulative counts at each distinct
/// score: what ROC and PR curves are made of. Sorting packs (score, label) into one u64 key
/// so a plain unstable sort does the work.
struct Sweep {
    /// Distinct scores, descending.
    thresholds: Vec<f32>,
    /// True and false positives among scores >= each threshold.
    tps: Vec<u64>,
    fps: Vec<u64>,
    pos: u64,
    neg: u64,
}

/// Maps an f32 to a u32 whose unsigned order is the float's total order.
fn order_key(x: f32) -> u32 {
    let b = x.to_bits();
    if b & 0x8000_0000 != 0 {
        !b
    } else {
        b | 0x8000_0000
    }
}

impl Sweep {
    fn new(scores: &[f32], labels: &[u8]) -> Sweep {
        assert_eq!(scores.len(), labels.len(), "one score per label");
        let mut keys: Vec<u64> = scores
            .iter()
            .zip(labels)
            .map(|(&s, &l)| ((order_key(s) as u64) << 1) | (l == 1) as u64)
            .collect();
        keys.sort_unstable_by(|a, b| b.cmp(a));
        let mut sw = Sweep {
            thresholds: Vec::new(),
            tps: Vec::new(),
            fps: Vec::new(),
            pos: 0,
            neg: 0,
        };
        let (mut tp, mut fp) = (0u64, 0u64);
        for (k, &key) in keys.iter().enumerate() {
            if key & 1 == 1 {
                tp += 1;
            } else {
                fp += 1;
            }
            let last = k + 1 == keys.len() || keys[k + 1] >> 1 != key >> 1;
            if last {
                let bits = (key >> 1) as u32;
                let raw = if bits & 0x8000_0000 != 0 {
                    bits & 0x7fff_ffff
                } else {
                    !bits
                };
                sw.thresholds.push(f32::from_bits(raw));
                sw.tps.push(tp);
                sw.fps.push(fp);
            }
        }
        sw.pos = tp;
        sw.neg = fp;
        sw
    }
}

/// The confusion at every distinct score taken as the threshold (`score >= t`), highest
/// threshold first.
pub fn threshold_sweep(scores: &[f32], labels: &[u8]) -> Vec<(f32, Confusion)> {
    let sw = Sweep::new(scores, labels);
    (0..sw.thresholds.len())
        .map(|i| {
            (
                sw.thresholds[i],
                Confusion {
                    tp: sw.tps[i],
                    fp: sw.fps[i],
                    tn: sw.neg - sw.fps[i],
                    fn_: sw.pos - sw.tps[i],
                },
            )
        })
        .collect()
}

/// An ROC curve as scikit-learn's `roc_curve(drop_intermediate=False)` gives it: a first
/// point (0, 0) at threshold +∞, then one point per distinct score, descending.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RocCurve {
    pub fpr: Vec<f64>,
    pub tpr: Vec<f64>,
    pub thresholds: Vec<f64>,
}

/// The ROC curve; `None` when only one class is present (rates undefined).
pub fn roc_curve(scores: &[f32], labels: &[u8]) -> Option<RocCurve> {
    let sw = Sweep::new(scores, labels);
    if sw.pos == 0 || sw.neg == 0 {
        return None;
    }
    let mut c = RocCurve {
        fpr: vec![0.0],
        tpr: vec![0.0],
        thresholds: vec![f64::INFINITY],
    };
    for i in 0..sw.thresholds.len() {
        c.fpr.push(sw.fps[i] as f64 / sw.neg as f64);
        c.tpr.push(sw.tps[i] as f64 / sw.pos as f64);
        c.thresholds.push(sw.thresholds[i] as f64);
    }
    Some(c)
}

/// Trapezoidal area under the points (x ascending or descending).
pub fn trapezoid(x: &[f64], y: &[f64]) -> f64 {
    let area: f64 = x
        .windows(2)
        .zip(y.windows(2))
        .map(|(xs, ys)| (xs[1] - xs[0]) * (ys[0] + ys[1]) / 2.0)
        .sum();
    area.abs()
}

/// Area under the ROC curve: the trapezoid over the ROC curve, which equals the
/// Mann–Whitney rank statistic (ties count one half). `None` when only one class is present.
pub fn roc_auc(scores: &[f32], labels: &[u8]) -> Option<f64> {
    let sw = Sweep::new(scores, labels);
    if sw.pos == 0 || sw.neg == 0 {
        return None;
    }
    // Σ over steps of Δfp · (tp_prev + tp) / 2, normalised.
    let (mut area, mut tp0, mut fp0) = (0.0f64, 0u64, 0u64);
    for i in 0..sw.thresholds.len() {
        area += (sw.fps[i] - fp0) as f64 * (sw.tps[i] + tp0) as f64 / 2.0;
        tp0 = sw.tps[i];
        fp0 = sw.fps[i];
    }
    Some(area / (sw.pos as f64 * sw.neg as f64))
}

/// A precision–recall curve as scikit-learn (1.9) `precision_recall_curve` gives it:
/// every distinct score as a threshold, ascending; precision and recall end with (1, 0).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PrCurve {
    pub precision: Vec<f64>,
    pub recall: Vec<f64>,
    pub thresholds: Vec<f64>,
}

/// The PR curve; `None` without positives (recall undefined).
pub fn pr_curve(scores: &[f32], labels: &[u8]) -> Option<PrCurve> {
    let sw = Sweep::new(scores, labels);
    if sw.pos == 0 {
        return None;
    }
    let mut c = PrCurve {
        precision: Vec::new(),
        recall: Vec::new(),
        thresholds: Vec::new(),
    };
    for i in (0..sw.thresholds.len()).rev() {
        let (tp, fp) = (sw.tps[i], sw.fps[i]);
        c.precision.push(if tp + fp == 0 {
            1.0
        } else {
            tp as f64 / (tp + fp) as f64
        });
        c.recall.push(tp as f64 / sw.pos as f64);
        c.thresholds.push(sw.thresholds[i] as f64);
    }
    c.precision.push(1.0);
    c.recall.push(0.0);
    Some(c)
}

/// Average precision, Σ (Rₙ − Rₙ₋₁)·Pₙ over thresholds (scikit-learn's definition, no
/// interpolation); `None` without positives.
pub fn average_precision(scores: &[f32], labels: &[u8]) -> Option<f64> {
    let sw = Sweep::new(scores, labels);
    if sw.pos == 0 {
        return None;
    }
    let (mut ap, mut r0) = (0.0f64, 0.0f64);
    for i in 0..sw.thresholds.len() {
        let (tp, fp) = (sw.tps[i], sw.fps[i]);
        let r = tp as f64 / sw.pos as f64;
        ap += (r - r0) * (tp as f64 / (tp + fp) as f64);
        r0 = r;
        if tp == sw.pos {
            break;
        }
    }
    Some(ap)
}

/// Area under the PR curve by the trapezoid (scikit-learn's `auc(recall, precision)`).
pub fn pr_auc(scores: &[f32], labels: &[u8]) -> Option<f64> {
    pr_curve(scores, labels).map(|c| trapezoid(&c.recall, &c.precision))
}

/// Mean squared difference between probability and label.
pub fn brier(probs: &[f32], labels: &[u8]) -> f64 {
    assert_eq!(probs.len(), labels.len(), "one probability per label");
    let sum: f64 = probs
        .iter()
        .zip(labels)
        .map(|(&p, &l)| (p as f64 - l as f64).powi(2))
        .sum();
    sum / probs.len().max(1) as f64
}

/// A reliability curve over `bins` equal-width bins of [0, 1] (scikit-learn's
/// `calibration_curve(strategy="uniform")` binning: a probability on an inner edge belongs
/// to the lower bin); empty bins are left out.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Calibration {
    /// Mean predicted probability per non-empty bin.
    pub mean_predicted: Vec<f64>,
    /// Fraction of positives per non-empty bin.
    pub fraction_positive: Vec<f64>,
    pub counts: Vec<u64>,
    /// Expected calibration error: Σ (nᵦ / N)·|fraction positive − mean predicted|.
    pub ece: f64,
}

pub fn calibration(probs: &[f32], labels: &[u8], bins: usize) -> Calibration {
    assert_eq!(probs.len(), labels.len(), "one probability per label");
    let bins = bins.max(1);
    let edges: Vec<f64> = (1..bins).map(|k| k as f64 / bins as f64).collect();
    let mut sum_p = vec![0f64; bins];
    let mut sum_y = vec![0f64; bins];
    let mut n = vec![0u64; bins];
    for (&p, &l) in probs.iter().zip(labels) {
        let p = p as f64;
        let b = edges.partition_point(|&e| e < p);
        sum_p[b] += p;
        sum_y[b] += l as f64;
        n[b] += 1;
    }
    let total = probs.len().max(1) as f64;
    let mut c = Calibration {
        mean_predicted: Vec::new(),
        fraction_positive: Vec::new(),
        counts: Vec::new(),
        ece: 0.0,
    };
    for b in 0..bins {
        if n[b] > 0 {
            let (mp, fp) = (sum_p[b] / n[b] as f64, sum_y[b] / n[b] as f64);
            c.mean_predicted.push(mp);
            c.fraction_positive.push(fp);
            c.counts.push(n[b]);
            c.ece += n[b] as f64 / total * (fp - mp).abs();
        }
    }
    c
}

/// A metric over (scores, labels), `None` where undefined.
pub type MetricFn<'a> = dyn Fn(&[f32], &[u8]) -> Option<f64> + 'a;

/// A percentile bootstrap confidence interval of `metric` over resamples of the rows,
/// drawn from `rng`; resamples where the metric is undefined are skipped.
pub fn bootstrap_ci<R: rand::Rng>(
    probs: &[f32],
    labels: &[u8],
    metric: &MetricFn<'_>,
    resamples: usize,
    level: f64,
    rng: &mut R,
) -> Option<(f64, f64)> {
    let n = probs.len();
    if n == 0 {
        return None;
    }
    let mut values = Vec::with_capacity(resamples);
    let (mut p, mut l) = (vec![0f32; n], vec![0u8; n]);
    for _ in 0..resamples {
        for k in 0..n {
            let i = rng.random_range(0..n);
            p[k] = probs[i];
            l[k] = labels[i];
        }
        if let Some(v) = metric(&p, &l) {
            values.push(v);
        }
    }
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let q = |f: f64| values[((values.len() - 1) as f64 * f).round() as usize];
    let a = (1.0 - level) / 2.0;
    Some((q(a), q(1.0 - a)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_of_perfect_random_and_inverted_rankings() {
        let l = [0, 0, 1, 1];
        assert_eq!(roc_auc(&[0.1, 0.2, 0.8, 0.9], &l), Some(1.0));
        assert_eq!(roc_auc(&[0.9, 0.8, 0.2, 0.1], &l), Some(0.0));
        assert_eq!(roc_auc(&[0.5, 0.5, 0.5, 0.5], &l), Some(0.5));
        assert_eq!(roc_auc(&[0.1, 0.2], &[1, 1]), None);
    }

    #[test]
    fn auc_matches_the_pairwise_definition() {
        // 3 positives, 3 negatives; pairs (pos > neg) counted by hand: 7 of 9, one tie = 0.5.
        let s = [0.1, 0.4, 0.35, 0.8, 0.4, 0.9];
        let l = [0, 0, 1, 1, 1, 0];
        let mut wins = 0.0;
        for i in 0..6 {
            for j in 0..6 {
                if l[i] == 1 && l[j] == 0 {
                    wins += if s[i] > s[j] {
                        1.0
                    } else if s[i] == s[j] {
                        0.5
                    } else {
                        0.0
                    };
                }
            }
        }
        assert!((roc_auc(&s, &l).unwrap() - wins / 9.0).abs() < 1e-12);
    }

    #[test]
    fn accuracy_and_log_loss() {
        assert_eq!(accuracy(&[0.2, 0.7, 0.5], &[0, 1, 0], 0.5), 2.0 / 3.0);
        assert!((log_loss(&[0.5, 0.5], &[0, 1]) - std::f64::consts::LN_2).abs() < 1e-9);
        assert!(log_loss(&[0.0], &[1]).is_finite());
    }
}
