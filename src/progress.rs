//! Progress bars for long work, one style for the whole tool. Bars draw on stderr and
//! disappear when stderr is not a terminal or when the user asked for `--quiet`.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Whether bars may be drawn; decided once by the binary and passed down.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    pub quiet: bool,
}

impl Progress {
    /// A bar over `len` units labelled `msg`.
    pub fn bar(&self, len: u64, msg: impl Into<String>, unit: &str) -> ProgressBar {
        let pb = ProgressBar::with_draw_target(Some(len), self.target());
        let template = format!(
            "{{msg:>18}} [{{bar:32}}] {{human_pos}}/{{human_len}} {unit} {{per_sec}} eta {{eta}}"
        );
        pb.set_style(
            ProgressStyle::with_template(&template)
                .expect("static progress template")
                .progress_chars("=> "),
        );
        pb.set_message(msg.into());
        pb
    }

    /// A bar over a byte count.
    pub fn bytes(&self, len: u64, msg: impl Into<String>) -> ProgressBar {
        let pb = ProgressBar::with_draw_target(Some(len), self.target());
        pb.set_style(
            ProgressStyle::with_template(
                "{msg:>18} [{bar:32}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("static progress template")
            .progress_chars("=> "),
        );
        pb.set_message(msg.into());
        pb
    }

    fn target(&self) -> ProgressDrawTarget {
        if self.quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        }
    }
}
