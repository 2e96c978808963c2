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

/// Confident learning (Northcutt et al., 2021) on out-of-fold probabilities of label 1,
/// for two classes: each class's threshold is the mean probability of that class over
/// the tiles labelled with it; a tile counts in the confident joint at (its label, the
/// class it is confidently predicted as); the joint is calibrated to the label counts, and
/// for each off-diagonal cell (i, j) the calibrated count of tiles labelled i with the
/// largest margin p(j) − p(i) are candidates ("prune by noise rate"); flagged are the
/// candidates that are also off the joint's diagonal (the paper's "both", its most
/// precise variant: a tile is flagged only when both rules name it).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Confident {
    /// Per-class thresholds t0, t1.
    pub thresholds: [f64; 2],
    /// Confident joint: rows the given label, columns the confidently predicted class.
    pub joint: [[usize; 2]; 2],
    /// Flagged rows (indices into the inputs), with their margin, largest first per
    /// class pair.
    pub flagged: Vec<(usize, f64)>,
}

/// [`Confident`] for probabilities `p` (of label 1) and labels `y`.
pub fn confident_learning(p: &[f64], y: &[u8]) -> Confident {
    let prob = |i: usize, class: u8| if class == 1 { p[i] } else { 1.0 - p[i] };
    let mut thresholds = [0.5f64; 2];
    for class in [0u8, 1] {
        let of: Vec<f64> = (0..p.len())
            .filter(|&i| y[i] == class)
            .map(|i| prob(i, class))
            .collect();
        if !of.is_empty() {
            thresholds[class as usize] = of.iter().sum::<f64>() / of.len() as f64;
        }
    }
    let mut joint = [[0usize; 2]; 2];
    let mut off_diagonal = vec![false; p.len()];
    for i in 0..p.len() {
        let confident: Vec<u8> = [0u8, 1]
            .into_iter()
            .filter(|&c| prob(i, c) >= thresholds[c as usize])
            .collect();
        if let Some(&c) = confident
            .iter()
            .max_by(|&&a, &&b| prob(i, a).total_cmp(&prob(i, b)))
        {
            joint[y[i] as usize][c as usize] += 1;
            off_diagonal[i] = c != y[i];
        }
    }
    let mut flagged = Vec::new();
    for given in [0u8, 1] {
        let other = 1 - given;
        let row: usize = joint[given as usize].iter().sum();
        let labelled = y.iter().filter(|&&l| l == given).count();
        if row == 0 {
            continue;
        }
        // Calibrated: the row scaled to the number of tiles with this label.
        let n = (joint[given as usize][other as usize] as f64 * labelled as f64 / row as f64)
            .round() as usize;
        let mut cands: Vec<(usize, f64)> = (0..p.len())
            .filter(|&i| y[i] == given && off_diagonal[i])
            .map(|i| (i, prob(i, other) - prob(i, given)))
            .collect();
        cands.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        flagged.extend(cands.into_iter().take(n).filter(|c| c.1 > 0.0));
    }
    Confident {
        thresholds,
        joint,
        flagged,
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

    #[test]
    fn confident_learning_flags_the_flipped_labels_of_a_calibrated_model() {
        // 1,000 tiles, probabilities informative but imperfect; 40 labels flipped.
        let n = 1000;
        let truth: Vec<u8> = (0..n).map(|i| (i % 2) as u8).collect();
        let p: Vec<f64> = (0..n)
            .map(|i| {
                let wobble = ((i * 7919) % 100) as f64 / 100.0 * 0.35;
                if truth[i] == 1 {
                    0.6 + wobble
                } else {
                    0.4 - wobble
                }
            })
            .collect();
        let mut y = truth.clone();
        let flipped: Vec<usize> = (0..n).step_by(25).collect();
        for &i in &flipped {
            y[i] ^= 1;
        }
        let c = confident_learning(&p, &y);
        let got: std::collections::BTreeSet<usize> = c.flagged.iter().map(|f| f.0).collect();
        // Flagged: only flips (no clean tile is confidently the other class), and every
        // flip the model confidently gives the other class (probability at or above that
        // class's threshold); the less confident half is left alone.
        assert!(got.iter().all(|i| flipped.contains(i)), "{c:?}");
        let confident: Vec<usize> = flipped
            .iter()
            .copied()
            .filter(|&i| {
                let other = 1 - y[i];
                let p_other = if other == 1 { p[i] } else { 1.0 - p[i] };
                p_other >= c.thresholds[other as usize]
            })
            .collect();
        assert!(confident.len() >= 15, "{}", confident.len());
        assert!(confident.iter().all(|i| got.contains(i)), "{c:?}");
        assert!(c.thresholds[0] > 0.5 && c.thresholds[1] > 0.5);
    }
}
