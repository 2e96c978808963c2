//! Label-noise candidates: out-of-fold probabilities from a cheap model (smartcore's
//! L2-regularised logistic regression on per-tile colour, stain and texture features),
//! with seeded stratified folds. A tile whose out-of-fold probability strongly
//! contradicts its label is a candidate for review, not proof.

use crate::error::{Error, Result};
use crate::seed::Seeds;
use rand::seq::SliceRandom;
use smartcore::linalg::basic::arrays::Array;
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::linear::logistic_regression::{LogisticRegression, LogisticRegressionParameters};

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

/// A logistic regression (smartcore, L2 α = 1, LBFGS) on standardised features.
#[derive(Debug, Clone)]
pub struct Logistic {
    mean: Vec<f64>,
    sd: Vec<f64>,
    w: Vec<f64>,
    b: f64,
}

impl Logistic {
    /// Fits on rows `rows` of `x` with labels `y` (standardisation from those rows).
    pub fn fit(x: &[Vec<f64>], y: &[u8], rows: &[usize]) -> Result<Logistic> {
        let d = x[0].len();
        let n = rows.len() as f64;
        let mut mean = vec![0.0; d];
        let mut sd = vec![0.0; d];
        for &i in rows {
            for j in 0..d {
                mean[j] += x[i][j] / n;
            }
        }
        for &i in rows {
            for j in 0..d {
                sd[j] += (x[i][j] - mean[j]).powi(2) / n;
            }
        }
        sd.iter_mut().for_each(|s| *s = s.sqrt().max(1e-9));
        let ys: Vec<i32> = rows.iter().map(|&i| y[i] as i32).collect();
        let (has0, has1) = (ys.contains(&0), ys.contains(&1));
        if !(has0 && has1) {
            // One class only: the model can only say that class.
            return Ok(Logistic {
                mean,
                sd,
                w: vec![0.0; d],
                b: if has1 { 20.0 } else { -20.0 },
            });
        }
        let mut values = Vec::with_capacity(rows.len() * d);
        for &i in rows {
            values.extend((0..d).map(|j| (x[i][j] - mean[j]) / sd[j]));
        }
        let m = DenseMatrix::new(rows.len(), d, values, false)
            .map_err(|e| Error::Usage(format!("label-noise model: {e}")))?;
        let params = LogisticRegressionParameters::default().with_alpha(1.0);
        let lr = LogisticRegression::fit(&m, &ys, params)
            .map_err(|e| Error::Usage(format!("label-noise model: {e}")))?;
        let w: Vec<f64> = (0..d).map(|j| *lr.coefficients().get((0, j))).collect();
        let b = *lr.intercept().get((0, 0));
        Ok(Logistic { mean, sd, w, b })
    }

    /// Probability of label 1.
    pub fn prob(&self, x: &[f64]) -> f64 {
        let z: f64 = self.b
            + x.iter()
                .zip(&self.w)
                .enumerate()
                .map(|(j, (v, w))| (v - self.mean[j]) / self.sd[j] * w)
                .sum::<f64>();
        1.0 / (1.0 + (-z).exp())
    }
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
