//! The policies that read the training history: best-model selection and early
//! stopping decide from the metric history alone (`run::history`), not from flags
//! inside the loop.

use crate::config::SelectMetric;
pub use crate::run::history::{EpochRecord, StepRecord};

/// Index of the best epoch so far (the first, on ties).
pub fn best_epoch(history: &[EpochRecord], metric: SelectMetric) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, e) in history.iter().enumerate() {
        if best.is_none_or(|b| e.score(metric) > history[b].score(metric)) {
            best = Some(i);
        }
    }
    best
}

/// Whether the latest epoch is the best so far: save it as `best`.
pub fn is_new_best(history: &[EpochRecord], metric: SelectMetric) -> bool {
    !history.is_empty() && best_epoch(history, metric) == Some(history.len() - 1)
}

/// Whether to stop: `patience` epochs have passed since the best one.
pub fn should_stop(history: &[EpochRecord], metric: SelectMetric, patience: Option<usize>) -> bool {
    match (patience, best_epoch(history, metric)) {
        (Some(p), Some(b)) => history.len() - 1 - b >= p,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(aucs: &[f64]) -> Vec<EpochRecord> {
        aucs.iter()
            .enumerate()
            .map(|(i, &a)| EpochRecord {
                epoch: i,
                steps: 1,
                train_loss: 1.0,
                valid_loss: 1.0 - a,
                valid_auc: Some(a),
                valid_accuracy: a,
                lr_end: 0.1,
                seconds: 1.0,
                images_per_second: 1.0,
            })
            .collect()
    }

    #[test]
    fn best_and_early_stop_follow_the_history() {
        let hist = h(&[0.6, 0.8, 0.7, 0.75]);
        assert_eq!(best_epoch(&hist, SelectMetric::ValidAuc), Some(1));
        assert!(is_new_best(&hist[..2], SelectMetric::ValidAuc));
        assert!(!is_new_best(&hist[..3], SelectMetric::ValidAuc));
        assert!(!should_stop(&hist[..3], SelectMetric::ValidAuc, Some(2)));
        assert!(should_stop(&hist, SelectMetric::ValidAuc, Some(2)));
        assert!(!should_stop(&hist, SelectMetric::ValidAuc, None));
        assert_eq!(best_epoch(&hist, SelectMetric::ValidLoss), Some(1));
    }
}
