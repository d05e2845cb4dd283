//! `webhooks completions SHELL` and `webhooks man`: what a shell and `man` need, generated from
//! the same clap command the binary parses, so they cannot drift from the real flags.

use std::io::Write;
use std::process::ExitCode;

use clap::{Args, CommandFactory, ValueEnum};

use super::BinaryCli;

/// The shells `webhooks completions` writes scripts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// Bash (source it, or put it in /etc/bash_completion.d/).
    Bash,
    /// Zsh (put it on $fpath as `_webhooks`).
    Zsh,
    /// Fish (put it in ~/.config/fish/completions/webhooks.fish).
    Fish,
}

/// Flags of `webhooks completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to write the completion script for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Writes the completion script for the shell on stdout.
pub fn completions(args: &CompletionsArgs) -> ExitCode {
    let mut command = BinaryCli::command();
    let mut out = Vec::new();
    match args.shell {
        Shell::Bash => clap_complete::generate(
            clap_complete::Shell::Bash,
            &mut command,
            "webhooks",
            &mut out,
        ),
        Shell::Zsh => clap_complete::generate(
            clap_complete::Shell::Zsh,
            &mut command,
            "webhooks",
            &mut out,
        ),
        Shell::Fish => clap_complete::generate(
            clap_complete::Shell::Fish,
            &mut command,
            "webhooks",
            &mut out,
        ),
    }
    write_stdout(&out)
}

/// Writes the manual page (roff) of `webhooks` on stdout.
pub fn man() -> ExitCode {
    let mut out = Vec::new();
    if let Err(e) = clap_mangen::Man::new(BinaryCli::command()).render(&mut out) {
        eprintln!("error: writing the manual page failed: {e}");
        return ExitCode::FAILURE;
    }
    write_stdout(&out)
}

/// Writes `bytes` on stdout; a closed pipe (`| head`) is not worth a panic.
fn write_stdout(bytes: &[u8]) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: writing to stdout failed: {e}");
            ExitCode::FAILURE
        }
    }
}
