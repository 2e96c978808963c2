//! Metrics over plain slices: probabilities/scores and 0/1 labels in, numbers out.
//! No tch and no other pcam module here, so every stage (training, evaluation,
//! slicing, search) computes a metric the same way.

/// Area under the ROC curve by the rank statistic (ties get their average rank).
/// `None` when only one class is present.
pub fn roc_auc(scores: &[f32], labels: &[u8]) -> Option<f64> {
    assert_eq!(scores.len(), labels.len(), "one score per label");
    let pos = labels.iter().filter(|&&l| l == 1).count();
    let neg = labels.len() - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut rank_sum_pos = 0.0f64;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        // Ranks i+1 ..= j+1 share their average.
        let avg = (i + j) as f64 / 2.0 + 1.0;
        rank_sum_pos += avg * order[i..=j].iter().filter(|&&k| labels[k] == 1).count() as f64;
        i = j + 1;
    }
    let p = pos as f64;
    Some((rank_sum_pos - p * (p + 1.0) / 2.0) / (p * neg as f64))
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
