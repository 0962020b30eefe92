//! The runc-compatible command line.

mod cgroup_commands;
mod checkpoint_commands;
mod commands;
mod spec_template;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(name = "husk", about = "A fast, hardened OCI container runtime (runc-compatible)", disable_version_flag = true)]
pub struct Cli {
    /// Root directory for container state [default: /run/husk, or
    /// $XDG_RUNTIME_DIR/husk for an ordinary user].
    #[arg(long, global = true)]
    pub root: Option<PathBuf>,
    /// Write log lines to this file instead of stderr.
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Log line format: text (logfmt, as runc) or json.
    #[arg(long = "log-format", global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Log debug output, including per-phase timings.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Use the systemd cgroup driver: linux.cgroupsPath is "slice:prefix:name", a transient unit.
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// Rootless mode: true, false or auto (rootless when not root, or in a
    /// user namespace that does not map every id) [default: auto].
    #[arg(long, value_name = "true|false|auto")]
    pub rootless: Option<String>,
    /// The CRIU binary for checkpoint and restore [default: criu in PATH].
    #[arg(long, global = true)]
    pub criu: Option<String>,
    /// Print the version, commit, runtime-spec and libseccomp versions.
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// `--root`, or the default for who runs husk.
    pub fn state_root(&self) -> PathBuf {
        self.root.clone().unwrap_or_else(crate::rootless::default_state_root)
    }
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Args, Debug, Clone)]
pub struct CreateArgs {
    /// Container id.
    pub id: String,
    /// Path to the bundle (the directory holding config.json).
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket that receives the pty master when process.terminal is set.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// File to write the container process's pid to.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root (for ramfs roots).
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a new session keyring for the container.
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass N extra fds (3..3+N) to the container process.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: i32,
    /// Unix socket that receives a pidfd of the container process.
    #[arg(long = "pidfd-socket")]
    pub pidfd_socket: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container: its process waits for `start`.
    Create(CreateArgs),
    /// Start the user program of a created container.
    Start { id: String },
    /// Create and start a container; without -d, wait and exit with its status.
    Run {
        #[command(flatten)]
        create: CreateArgs,
        /// Return after start instead of waiting.
        #[arg(short = 'd', long)]
        detach: bool,
        /// Keep the stopped container instead of deleting it.
        #[arg(long)]
        keep: bool,
    },
    /// Print the runtime-spec state of a container as JSON.
    State { id: String },
    /// Send a signal (default SIGTERM) to the container's init process.
    Kill {
        id: String,
        signal: Option<String>,
        /// Signal every process of the container.
        #[arg(short = 'a', long)]
        all: bool,
    },
    /// Delete a container and everything made for it.
    Delete {
        id: String,
        /// Kill a running container first.
        #[arg(short = 'f', long)]
        force: bool,
    },
    /// List containers.
    List {
        /// Print the container ids only.
        #[arg(short = 'q', long)]
        quiet: bool,
        /// table or json.
        #[arg(short = 'f', long, value_enum, default_value = "table")]
        format: ListFormat,
    },
    /// Run a new process inside a running container.
    Exec(ExecArgs),
    /// Print the features this runtime supports (runtime-spec features.md).
    Features,
    /// Change a running container's resource limits.
    Update(cgroup_commands::UpdateArgs),
    /// Freeze every process of a container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// List a container's processes (ps output filtered, or -f json pids).
    Ps(cgroup_commands::PsArgs),
    /// Print resource usage stats and OOM events of a container.
    Events(cgroup_commands::EventsArgs),
    /// Checkpoint a running container with CRIU.
    // A repeated flag is taken once, the last value winning, as runc's
    // urfave/cli does: podman 4.3's `container checkpoint -R` passes
    // --leave-running twice.
    #[command(args_override_self = true)]
    Checkpoint(checkpoint_commands::CheckpointArgs),
    /// Restore a container from a CRIU checkpoint.
    #[command(args_override_self = true)]
    Restore(checkpoint_commands::RestoreArgs),
    /// Write a default config.json.
    Spec {
        #[arg(short = 'b', long, default_value = ".")]
        bundle: PathBuf,
        /// A config for running without root (user namespace, id maps).
        #[arg(long)]
        rootless: bool,
    },
}

#[derive(Args, Debug, Clone)]
pub struct ExecArgs {
    /// Container id.
    pub id: String,
    /// The command and its arguments (unless --process is given).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
    /// A process.json to run instead of the container's process.
    #[arg(short = 'p', long)]
    pub process: Option<PathBuf>,
    /// Give the process a pseudo-terminal.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Unix socket that receives the pty master (with --tty --detach).
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Working directory of the process in the container.
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// KEY=VALUE to add to the environment (repeatable).
    #[arg(short = 'e', long)]
    pub env: Vec<String>,
    /// uid[:gid]
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// A supplementary group id (repeatable).
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// A capability to add (repeatable).
    #[arg(short = 'c', long)]
    pub cap: Vec<String>,
    /// Set no_new_privs for the process.
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// AppArmor profile of the process.
    #[arg(long)]
    pub apparmor: Option<String>,
    /// SELinux label of the process.
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    /// Do not wait for the process: return once it runs.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Write the process's pid to this file.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Pass this many fds from 3 on to the process.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: i32,
    /// Unix socket that receives a pidfd of the new process.
    #[arg(long = "pidfd-socket")]
    pub pidfd_socket: Option<PathBuf>,
    /// Exec into a paused container (the process stays frozen until resume).
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// Run the process in an existing sub-cgroup of the container's:
    /// `[CONTROLLER[,CONTROLLER]:]PATH` (repeatable).
    #[arg(long)]
    pub cgroup: Vec<String>,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum ListFormat {
    Table,
    Json,
}

/// Parse arguments, run, and return the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse_from(runc_single_dash(std::env::args_os().collect())) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 1 } else { 0 };
        }
    };
    // Before the log file or any state file is opened.
    let preserve = match &cli.command {
        Some(Command::Create(a) | Command::Run { create: a, .. }) => a.preserve_fds,
        Some(Command::Exec(e)) => e.preserve_fds,
        _ => 0,
    };
    if preserve > 0 {
        crate::preserved_fds::reserve(preserve);
    }
    commands::dispatch(cli)
}

/// runc's urfave/cli also takes a long flag with one dash, and go-runc
/// (containerd's runc shim) passes restore's `-no-subreaper` that way: in
/// `checkpoint` and `restore`, whose only positional is the id, `-name`
/// and `-name=value` of one of their long flags are read as `--name`.
fn runc_single_dash(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    use clap::CommandFactory;
    let mut i = 1;
    let sub = loop {
        let Some(a) = args.get(i).and_then(|a| a.to_str()) else { return args };
        if matches!(a, "--root" | "--log" | "--log-format" | "--rootless" | "--criu") {
            i += 2;
        } else if a == "--" {
            return args;
        } else if a.starts_with('-') {
            i += 1;
        } else {
            break a.to_string();
        }
    };
    if sub != "checkpoint" && sub != "restore" {
        return args;
    }
    let cmd = Cli::command();
    let Some(sc) = cmd.find_subcommand(&sub) else { return args };
    let longs: Vec<&str> = sc.get_arguments().filter_map(|a| a.get_long()).collect();
    for a in args.iter_mut().skip(i + 1) {
        let Some(s) = a.to_str() else { continue };
        if s == "--" {
            break;
        }
        if s.len() > 2 && s.starts_with('-') && !s.starts_with("--") {
            let name = s[1..].split('=').next().unwrap_or("");
            if longs.contains(&name) {
                *a = format!("-{s}").into();
            }
        }
    }
    args
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    #[test]
    fn one_dash_long_flags_of_checkpoint_and_restore() {
        let conv = |line: &str| -> Vec<String> {
            super::runc_single_dash(line.split(' ').map(std::ffi::OsString::from).collect())
                .into_iter()
                .map(|a| a.into_string().unwrap())
                .collect()
        };
        // go-runc's restore.
        assert_eq!(
            conv("husk --root /r --log l restore --image-path i --detach -no-subreaper -work-path=w -d -b b c1"),
            conv("husk --root /r --log l restore --image-path i --detach --no-subreaper --work-path=w -d -b b c1")
        );
        assert_eq!(conv("husk checkpoint -leave-running c1"), conv("husk checkpoint --leave-running c1"));
        // Elsewhere nothing changes: exec's process arguments stay as given.
        assert_eq!(conv("husk exec c1 prog -no-subreaper -root"), "husk exec c1 prog -no-subreaper -root".split(' ').collect::<Vec<_>>());
        assert_eq!(conv("husk restore -bogus c1"), ["husk", "restore", "-bogus", "c1"]);
        use clap::Parser;
        assert!(super::Cli::try_parse_from(conv("husk restore -d -no-subreaper --bundle b c1")).is_ok());
    }

    #[test]
    fn checkpoint_and_restore_take_a_repeated_flag_as_runc_does() {
        use super::{Cli, Command};
        use clap::Parser;
        // podman 4.3's `container checkpoint -R`.
        let cli = Cli::try_parse_from("husk checkpoint --image-path a --leave-running --leave-running --image-path b --empty-ns network --empty-ns ipc c1".split(' ')).unwrap();
        let Some(Command::Checkpoint(a)) = cli.command else { panic!("not checkpoint") };
        assert!(a.leave_running);
        assert_eq!(a.image_path, Some(PathBuf::from("b")));
        assert_eq!(a.empty_ns, ["network", "ipc"]);
        let cli = Cli::try_parse_from("husk restore -d --detach -b x c1".split(' ')).unwrap();
        let Some(Command::Restore(a)) = cli.command else { panic!("not restore") };
        assert!(a.detach);
    }
}
