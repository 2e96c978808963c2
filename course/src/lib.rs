//! Tooling for this repository as a course deliverable, outside the pcam library: the
//! journal's table blocks and completeness check ([`journal`]), the CI audit of the
//! workflow, `.ci/run` and CI logs ([`ci`]), and the README audit ([`docs`]). The q7 and
//! q9 notebooks and `make journal-check` use it; it reads the repository's files and the
//! tables pcam's [`pcam::report`] renders, and nothing in pcam depends on it.

pub mod ci;
pub mod docs;
pub mod journal;
