//! `completions`: generated from the command line's own definition, so
//! they are never out of date.

use clap::CommandFactory as _;

use crate::ctl::cli::Cli;
use crate::ctl::client::exit;

pub(crate) fn run(shell: clap_complete::Shell) -> u8 {
    clap_complete::generate(shell, &mut Cli::command(), "nexusctl", &mut std::io::stdout());
    exit::OK
}
