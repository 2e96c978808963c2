//! Label-noise candidates: out-of-fold probabilities from a cheap model (the
//! [`Logistic`] regression on per-tile colour, stain and texture features),
//! with seeded stratified folds. A tile whose out-of-fold probability strongly
//! contradicts its label is a candidate for review, not proof.

use crate::data::features::Logistic;
use crate::error::Result;
use crate::seed::Seeds;
use rand::seq::SliceRandom;

/// Out-of-fold probability of label 1 for every row of `x`, from `folds` folds drawn
/// from the `audit/folds` stream (stratified by label).
pub fn out_of_fold(x: &[Vec<f64>], y: &[u8], folds: usize, seeds: &Seeds) -> Result<Vec<f64>> {
    let n = y.len();
    let folds = folds.max(2);
    let mut fold_of = vec![0usize; n];
    let mut rng = seeds.stream("audit/folds", 0);
    for class in [0u8, 1] {
        let mut idx: Vec<usize> = (0..n).filter(|&i| y[i] == class).collect();
        idx.shuffle(&mut rng);
        for (k, i) in idx.into_iter().enumerate() {
            fold_of[i] = k % folds;
        }
    }
    let mut p = vec![f64::NAN; n];
    for f in 0..folds {
        let train: Vec<usize> = (0..n).filter(|&i| fold_of[i] != f).collect();
        let test: Vec<usize> = (0..n).filter(|&i| fold_of[i] == f).collect();
        if test.is_empty() {
            continue;
        }
        let model = Logistic::fit(x, y, &train)?;
        for i in test {
            p[i] = model.prob(&x[i]);
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flipped_labels_get_contradicting_probabilities() {
        // One informative feature; ten labels flipped.
        let n = 400;
        let x: Vec<Vec<f64>> = (0..n)
            .map(|i| vec![(i % 2) as f64 * 4.0 + (i % 7) as f64 * 0.1])
            .collect();
        let mut y: Vec<u8> = (0..n).map(|i| (i % 2) as u8).collect();
        for i in (0..20).step_by(2) {
            y[i] ^= 1;
        }
        let p = out_of_fold(&x, &y, 5, &Seeds::new(1)).unwrap();
        for i in (0..20).step_by(2) {
            assert!(
                (p[i] - y[i] as f64).abs() > 0.5,
                "tile {i}: p {} label {}",
                p[i],
                y[i]
            );
        }
        let agree = (20..n)
            .filter(|&i| (p[i] - y[i] as f64).abs() < 0.5)
            .count();
        assert_eq!(agree, n - 20);
        assert_eq!(p, out_of_fold(&x, &y, 5, &Seeds::new(1)).unwrap());
    }
}
