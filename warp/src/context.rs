//! What every command gets: the layout, the global options, and how to talk
//! to the user (messages go to stderr, results to stdout).
use crate::layout::Layout;

pub struct Ctx {
    pub layout: Layout,
    /// `--dry-run`: plan and print, write nothing (no download either).
    pub dry_run: bool,
    /// `-q`: only errors and results.
    pub quiet: bool,
    /// `-v`: say more (URLs, paths, each step of a transaction).
    pub verbose: bool,
    /// `--wait`: wait for another warp's lock instead of failing with
    /// status 8.
    pub wait: bool,
}

impl Ctx {
    /// A progress or status line (`-q` hides it).
    pub fn info(&self, msg: &str) {
        if !self.quiet {
            eprintln!("{msg}");
        }
    }
    /// Detail for `-v`.
    pub fn detail(&self, msg: &str) {
        if self.verbose {
            eprintln!("  {msg}");
        }
    }
    /// A warning: always shown.
    pub fn warn(&self, msg: &str) {
        eprintln!("warp: warning: {msg}");
    }
}
