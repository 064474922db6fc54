//! The formats every report is written in (`--format text|json|github`).
//! The reporters themselves live in `crate::report`, over one report type;
//! this enum stays here, below them, so `crate::sql::Format` keeps its path
//! and the analysis layer can name it without importing the reporters.

/// Output format of `dbguard scan` and `dbguard check-migration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// For people: one finding per block, then a summary.
    #[default]
    Text,
    /// One JSON object, for tools.
    Json,
    /// GitHub Actions workflow commands (`::error file=...`).
    Github,
}
