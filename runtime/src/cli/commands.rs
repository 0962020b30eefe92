//! One function per subcommand; errors become runc-style log lines and
//! exit status 1.

use std::io::Write;
use std::sync::Arc;

use super::{Cli, Command, CreateArgs, ListFormat, LogFormat};
use crate::container::{self, ops, ContainerError, CreateOptions};
use crate::logging::{Format, Logger};
use crate::state::{Status, Store};

type Result<T> = std::result::Result<T, ContainerError>;

pub fn dispatch(cli: Cli) -> i32 {
    let format = match cli.log_format {
        LogFormat::Text => Format::Text,
        LogFormat::Json => Format::Json,
    };
    let file = match &cli.log {
        Some(p) => match std::fs::OpenOptions::new().create(true).append(true).open(p) {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("husk: opening log file {}: {e}", p.display());
                return 1;
            }
        },
        None => None,
    };
    let logger = Arc::new(Logger::new(file, format, cli.debug));
    let _ = tracing::subscriber::set_global_default(LoggerRef(logger.clone()));
    if cli.version {
        // runc's layout, line by line: scripts parse it.
        let seccomp = libseccomp::ScmpVersion::current().map_or("unknown".to_string(), |v| format!("{}.{}.{}", v.major, v.minor, v.micro));
        println!(
            "husk version {}\ncommit: {}\nspec: {}\nlibseccomp: {seccomp}",
            env!("CARGO_PKG_VERSION"),
            option_env!("HUSK_COMMIT").unwrap_or("unknown"),
            crate::features::OCI_VERSION_MAX
        );
        return 0;
    }
    let Some(command) = cli.command.as_ref() else {
        eprintln!("husk: no command given (see husk --help)");
        return 1;
    };
    // runc's exec exits 255 when it fails itself, so callers can tell that
    // from the process's own exit status, which passes through.
    // Its messages start "exec failed: ", as runc's do.
    let exec = matches!(command, super::Command::Exec(_));
    let failed = if exec { 255 } else { 1 };
    match run(&cli, command) {
        Ok(code) => code,
        Err(e) => {
            // Errors may quote user input of any size: keep the line readable.
            let mut msg = match crate::sync::error(e.to_string()) {
                crate::sync::Msg::Error(m) => m,
                _ => e.to_string(),
            };
            if exec {
                msg.insert_str(0, "exec failed: ");
            }
            logger.write(tracing::Level::ERROR, &msg);
            if logger.logs_to_file() {
                eprintln!("husk: {msg}");
            }
            failed
        }
    }
}

/// `set_global_default` wants an owned subscriber; share the logger with it.
struct LoggerRef(Arc<Logger>);

impl tracing::Subscriber for LoggerRef {
    fn enabled(&self, m: &tracing::Metadata<'_>) -> bool {
        self.0.enabled(m)
    }
    fn new_span(&self, a: &tracing::span::Attributes<'_>) -> tracing::Id {
        self.0.new_span(a)
    }
    fn record(&self, s: &tracing::Id, r: &tracing::span::Record<'_>) {
        self.0.record(s, r)
    }
    fn record_follows_from(&self, s: &tracing::Id, f: &tracing::Id) {
        self.0.record_follows_from(s, f)
    }
    fn event(&self, e: &tracing::Event<'_>) {
        self.0.event(e)
    }
    fn enter(&self, s: &tracing::Id) {
        self.0.enter(s)
    }
    fn exit(&self, s: &tracing::Id) {
        self.0.exit(s)
    }
    fn try_close(&self, id: tracing::Id) -> bool {
        self.0.try_close(id)
    }
}

fn run(cli: &Cli, command: &Command) -> Result<i32> {
    let rootless = crate::rootless::decide(cli.rootless.as_deref()).map_err(|e| ContainerError::Usage(e.to_string()))?;
    let store = Store::new(&cli.state_root());
    match command {
        Command::Create(a) => {
            container::create(&store, &create_options(cli, a, false, rootless))?;
            Ok(0)
        }
        Command::Start { id } => ops::start(&store, id).map(|_| 0),
        Command::Run { create, detach, keep } => run_container(cli, &store, create, *detach, *keep, rootless),
        Command::State { id } => {
            let (st, status) = ops::status(&store, id)?;
            print_json(&st.spec_state(status));
            Ok(0)
        }
        Command::Kill { id, signal, all } => {
            let sig = crate::signal::parse(signal.as_deref().unwrap_or("SIGTERM"))?;
            ops::kill(&store, id, sig, *all).map(|_| 0)
        }
        Command::Delete { id, force } => ops::delete(&store, id, *force).map(|_| 0),
        Command::List { quiet, format } => list(&store, *quiet, *format).map(|_| 0),
        Command::Spec { bundle, rootless } => write_spec(bundle, *rootless).map(|_| 0),
        Command::Update(a) => super::cgroup_commands::update(&store, a),
        Command::Pause { id } => super::cgroup_commands::pause(&store, id),
        Command::Resume { id } => super::cgroup_commands::resume(&store, id),
        Command::Ps(a) => super::cgroup_commands::ps(&store, a),
        Command::Events(a) => super::cgroup_commands::events(&store, a),
        Command::Exec(a) => container::exec::exec(&store, &exec_options(a, rootless)),
        Command::Checkpoint(a) => super::checkpoint_commands::checkpoint(&store, a, cli.criu.clone()),
        Command::Restore(a) => super::checkpoint_commands::restore(&store, a, cli.criu.clone(), rootless),
        Command::Features => {
            print_json(&crate::features::features(cli.criu.as_deref().unwrap_or(crate::criu::DEFAULT_CRIU)));
            Ok(0)
        }
    }
}

fn create_options(cli: &Cli, a: &CreateArgs, foreground: bool, rootless: bool) -> CreateOptions {
    CreateOptions {
        id: a.id.clone(),
        bundle: a.bundle.clone(),
        console_socket: a.console_socket.clone(),
        pid_file: a.pid_file.clone(),
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds,
        pidfd_socket: a.pidfd_socket.clone(),
        systemd_cgroup: cli.systemd_cgroup,
        // The CLI does as runc: the flag decides.
        systemd_cgroup_by_path: false,
        foreground,
        stdio: None,
        rootless,
    }
}

fn exec_options(a: &super::ExecArgs, rootless: bool) -> container::exec::ExecOptions {
    container::exec::ExecOptions {
        rootless,
        id: a.id.clone(),
        process: a.process.clone(),
        args: a.command.clone(),
        tty: a.tty,
        console_socket: a.console_socket.clone(),
        cwd: a.cwd.clone(),
        env: a.env.clone(),
        user: a.user.clone(),
        additional_gids: a.additional_gids.clone(),
        caps: a.cap.clone(),
        no_new_privs: a.no_new_privs,
        apparmor: a.apparmor.clone(),
        process_label: a.process_label.clone(),
        detach: a.detach,
        pid_file: a.pid_file.clone(),
        preserve_fds: a.preserve_fds,
        pidfd_socket: a.pidfd_socket.clone(),
        ignore_paused: a.ignore_paused,
        cgroup: a.cgroup.clone(),
        stdio: None,
    }
}

fn run_container(cli: &Cli, store: &Store, a: &CreateArgs, detach: bool, keep: bool, rootless: bool) -> Result<i32> {
    let created = container::create(store, &create_options(cli, a, !detach, rootless))?;
    let pid = created.pid;
    let master = created.pty_master;
    drop(created.dir);
    // Queue signals from here on, so none sent between start and the wait
    // loop is lost; the container process was forked with the default mask.
    let set = (!detach).then(ops::block_signals);
    if let Err(e) = ops::start(store, &a.id) {
        let _ = ops::delete(store, &a.id, true);
        return Err(e);
    }
    let Some(set) = set else {
        return Ok(0);
    };
    let proxy = master.map(crate::console::Proxy::start);
    let code = ops::forward_and_wait(pid, &set);
    let res = if keep { Ok(()) } else { ops::delete(store, &a.id, true) };
    if let Some(p) = proxy {
        p.finish();
    }
    res.map(|_| code)
}

fn print_json(v: &impl serde::Serialize) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer_pretty(&mut out, v);
    let _ = writeln!(out);
}

fn list(store: &Store, quiet: bool, format: ListFormat) -> Result<()> {
    let rows = ops::list(store)?;
    let mut out = std::io::stdout().lock();
    if quiet {
        for (st, _) in &rows {
            let _ = writeln!(out, "{}", st.id);
        }
        return Ok(());
    }
    match format {
        ListFormat::Json => {
            let v: Vec<_> = rows.iter().map(|(st, s)| st.spec_state(*s)).collect();
            if v.is_empty() {
                let _ = writeln!(out, "null");
            } else {
                let _ = serde_json::to_writer(&mut out, &v);
                let _ = writeln!(out);
            }
        }
        ListFormat::Table => {
            let mut table = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from)];
            for (st, status) in &rows {
                let pid = if *status == Status::Stopped { 0 } else { st.pid };
                table.push([
                    st.id.clone(),
                    pid.to_string(),
                    status.to_string(),
                    st.bundle.display().to_string(),
                    st.created.clone(),
                    if st.owner.is_empty() { "root".into() } else { st.owner.clone() },
                ]);
            }
            let _ = out.write_all(tabulate(&table).as_bytes());
        }
    }
    Ok(())
}

/// Columns as Go's tabwriter lays them out for runc (min width 12, padding 3).
fn tabulate(rows: &[[String; 6]]) -> String {
    let mut widths = [0usize; 6];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max((c.len() + 3).max(12));
        }
    }
    let mut s = String::new();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}", w = widths[i]));
            }
        }
        s.push('\n');
    }
    s
}

fn write_spec(bundle: &std::path::Path, rootless: bool) -> Result<()> {
    let path = bundle.join("config.json");
    if path.exists() {
        return Err(ContainerError::Usage(format!("File {} exists. Remove it first", path.display())));
    }
    let v = super::spec_template::default_spec(rootless);
    let text = serde_json::to_string_pretty(&v).map_err(|e| ContainerError::Usage(e.to_string()))?;
    std::fs::write(&path, text + "\n").map_err(|e| ContainerError::Io(path, e))
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_columns_align() {
        let rows = vec![
            ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from),
            ["a-long-container-id", "1", "running", "/b", "t", "root"].map(String::from),
        ];
        let t = super::tabulate(&rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0].find("PID"), lines[1].find(" 1 ").map(|i| i + 1));
        assert!(lines[0].starts_with("ID          "));
    }
}
