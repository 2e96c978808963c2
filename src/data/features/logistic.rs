//! The logistic regression scored on tile features, shared by the audit's label-noise
//! model and the feature baseline: smartcore's L2-regularised logistic regression on
//! standardised features.

use crate::error::{Error, Result};
use smartcore::linalg::basic::arrays::Array;
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::linear::logistic_regression::{LogisticRegression, LogisticRegressionParameters};

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
            .map_err(|e| Error::failed("logistic regression on tile features", e))?;
        let params = LogisticRegressionParameters::default().with_alpha(1.0);
        let lr = LogisticRegression::fit(&m, &ys, params)
            .map_err(|e| Error::failed("logistic regression on tile features", e))?;
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
