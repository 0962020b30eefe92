//! husk-docs OUTDIR: writes husk's man pages and shell completions, generated
//! from the clap definition of the command line (`husk::cli::Cli`).
//!
//!     OUTDIR/man/husk.8, OUTDIR/man/husk-<subcommand>.8   (section 8, clap_mangen)
//!     OUTDIR/completions/husk.bash, _husk, husk.fish       (clap_complete)
//!
//! Built only with `--features docs` (see runtime/Cargo.toml) and run on the
//! host by `make docs`, so clap_mangen and clap_complete never end up in the
//! `husk` binary. OUTDIR must not exist yet or be empty of stale pages: the
//! Makefile writes into a fresh directory.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Command, CommandFactory};
use clap_complete::Shell;
use clap_mangen::Man;

/// Section 8: system administration commands, as runc's man pages.
const SECTION: &str = "8";

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(out), None) = (args.next(), args.next()) else {
        eprintln!("usage: husk-docs OUTDIR");
        return ExitCode::from(2);
    };
    match generate(Path::new(&out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("husk-docs: {e}");
            ExitCode::FAILURE
        }
    }
}

fn command() -> Command {
    // `husk --version` is a flag of husk's own (runc's lines), so clap knows
    // no version: give it the package's for the pages' title and VERSION.
    husk::cli::Cli::command().version(env!("CARGO_PKG_VERSION"))
}

fn generate(out: &Path) -> io::Result<()> {
    let man_dir = out.join("man");
    let completions = out.join("completions");
    fs::create_dir_all(&man_dir)?;
    fs::create_dir_all(&completions)?;

    // As clap_mangen::generate_to, with section 8: one page per command that
    // is not hidden, named by clap's display name (husk, husk-run, ...).
    let mut cmd = command().disable_help_subcommand(true);
    cmd.build();
    let mut pages = Vec::new();
    man_pages(&cmd, &man_dir, &mut pages)?;
    for p in &pages {
        println!("{}", p.display());
    }

    for (shell, name) in [
        (Shell::Bash, "husk.bash"),
        (Shell::Zsh, "_husk"),
        (Shell::Fish, "husk.fish"),
    ] {
        let path = completions.join(name);
        let mut f = BufWriter::new(File::create(&path)?);
        clap_complete::generate(shell, &mut command(), "husk", &mut f);
        f.flush()?;
        println!("{}", path.display());
    }
    Ok(())
}

fn man_pages(cmd: &Command, dir: &Path, pages: &mut Vec<PathBuf>) -> io::Result<()> {
    let man = Man::new(cmd.clone())
        .section(SECTION)
        .source(format!("husk {}", env!("CARGO_PKG_VERSION")));
    let path = dir.join(man.get_filename());
    let mut f = BufWriter::new(File::create(&path)?);
    man.render(&mut f)?;
    f.flush()?;
    pages.push(path);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        man_pages(sub, dir, pages)?;
    }
    Ok(())
}
