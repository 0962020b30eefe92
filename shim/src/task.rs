//! The Task service: containerd's requests on the shim's containers and
//! their exec'd processes, carried out by husk's library.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use containerd_shim::api::{self, Status as TaskStatus};
use containerd_shim::monitor::{ExitEvent, Subject, Topic};
use containerd_shim::protos::events::task::{
    TaskCheckpointed, TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskIO, TaskOOM, TaskPaused, TaskResumed,
    TaskStart,
};
use containerd_shim::protos::protobuf::{well_known_types::any::Any, well_known_types::timestamp::Timestamp, MessageField};
use containerd_shim::protos::topics;
use containerd_shim::synchronous::monitor::monitor_subscribe;
use containerd_shim::{ExitSignal, TtrpcContext, TtrpcResult};
use husk::container::{self, cgroup_ops, checkpoint::CheckpointOptions, exec::ExecOptions, ops, restore::RestoreOptions, CreateOptions};
use husk::state::Store;

use crate::error::{io, Result, ShimError};
use crate::events::{self, Event, Packed, Publisher};
use crate::stdio::{Attached, Prepared, Stdio};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Created,
    Running,
    Stopped,
}

struct Proc {
    pid: i32,
    phase: Phase,
    exit: Option<(u32, Timestamp)>,
    stdio: Stdio,
    io: Option<Attached>,
    /// An exec's process.json, until it is started.
    spec: Option<Vec<u8>>,
}

impl Proc {
    fn new(stdio: Stdio) -> Proc {
        Proc { pid: 0, phase: Phase::Created, exit: None, stdio, io: None, spec: None }
    }
}

struct Container {
    bundle: PathBuf,
    /// `<bundle>/rootfs` when the shim mounted it.
    mounted: Option<PathBuf>,
    init: Proc,
    execs: HashMap<String, Proc>,
    /// Created from a checkpoint: restored by Start (as the runc shim's
    /// createdCheckpointState), with this stdio.
    restore: Option<PendingRestore>,
}

struct PendingRestore {
    prepared: Prepared,
    /// The checkpoint image (containerd's unpacked copy of it).
    image: PathBuf,
    /// CRIU's work directory: the runc options' criu_work_path, or the image.
    work: Option<PathBuf>,
}

#[derive(Default)]
struct State {
    containers: HashMap<String, Container>,
    /// Exits of pids not (yet) known: a process can exit before create or
    /// exec has returned its pid.
    unclaimed: HashMap<i32, (i32, Instant)>,
}

struct Inner {
    namespace: String,
    store: Store,
    root: PathBuf,
    state: Mutex<State>,
    exited: Condvar,
    events: Mutex<mpsc::Sender<Packed>>,
    exit: Arc<ExitSignal>,
}

#[derive(Clone)]
pub struct TaskService {
    inner: Arc<Inner>,
}

fn now() -> Timestamp {
    Timestamp::now()
}

fn not_found(id: &str) -> ShimError {
    ShimError::NotFound(format!("container {id} not found"))
}

impl TaskService {
    pub fn new(namespace: &str, root: PathBuf, publisher: Publisher, exit: Arc<ExitSignal>) -> TaskService {
        let (tx, rx) = mpsc::channel::<Packed>();
        let ns = namespace.to_string();
        // Events go out in order, from one thread, never under our lock.
        std::thread::spawn(move || {
            for ev in rx {
                if let Err(e) = publisher.publish(&ns, ev) {
                    log::error!("publishing an event: {e}");
                }
            }
        });
        let inner = Arc::new(Inner {
            namespace: namespace.to_string(),
            store: Store::new(&root),
            root,
            state: Mutex::new(State::default()),
            exited: Condvar::new(),
            events: Mutex::new(tx),
            exit,
        });
        // Subscribed before any child exists, so no exit is missed.
        match monitor_subscribe(Topic::Pid) {
            Ok(sub) => {
                let weak = Arc::downgrade(&inner);
                std::thread::spawn(move || {
                    while let Ok(ExitEvent { subject, exit_code }) = sub.rx.recv() {
                        let Some(inner) = weak.upgrade() else { return };
                        if let Subject::Pid(pid) = subject {
                            inner.on_exit(pid, exit_code);
                        }
                    }
                });
            }
            Err(e) => log::error!("subscribing to exits: {e}"),
        }
        TaskService { inner }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish<E: Event>(&self, topic: &'static str, ev: E) {
        let _ = self.events.lock().unwrap_or_else(|e| e.into_inner()).send(events::pack(topic, &ev));
    }

    fn on_exit(&self, pid: i32, code: i32) {
        let drained = {
            let mut st = self.lock();
            let found = find_pid(&mut st, pid);
            match found {
                None => {
                    st.unclaimed.retain(|_, (_, t)| t.elapsed() < Duration::from_secs(60));
                    st.unclaimed.insert(pid, (code, Instant::now()));
                    return;
                }
                Some(p) => p.io.as_mut().and_then(|io| io.drained.take()),
            }
        };
        // The terminal's last output is copied out before the exit is told.
        if let Some(rx) = drained {
            let _ = rx.recv_timeout(Duration::from_secs(2));
        }
        let mut st = self.lock();
        self.record_exit(&mut st, pid, code);
    }

    fn record_exit(&self, st: &mut State, pid: i32, code: i32) {
        let mut event = None;
        for (cid, c) in st.containers.iter_mut() {
            let procs = std::iter::once((cid.clone(), &mut c.init)).chain(c.execs.iter_mut().map(|(e, p)| (e.clone(), p)));
            for (pid_owner, p) in procs {
                if p.pid == pid && p.exit.is_none() {
                    let ts = now();
                    p.exit = Some((code as u32, ts.clone()));
                    p.phase = Phase::Stopped;
                    event = Some(TaskExit {
                        container_id: cid.clone(),
                        id: pid_owner,
                        pid: pid as u32,
                        exit_status: code as u32,
                        exited_at: MessageField::some(ts),
                        ..Default::default()
                    });
                    break;
                }
            }
            if event.is_some() {
                break;
            }
        }
        if let Some(ev) = event {
            self.exited.notify_all();
            self.publish(topics::TASK_EXIT_EVENT_TOPIC, ev);
        }
    }

    /// A pid was just learnt: it may have exited already.
    fn claim(&self, st: &mut State, pid: i32) {
        if let Some((code, _)) = st.unclaimed.remove(&pid) {
            self.record_exit(st, pid, code);
        }
    }

    fn container<'a>(&self, st: &'a mut State, id: &str) -> Result<&'a mut Container> {
        st.containers.get_mut(id).ok_or_else(|| not_found(id))
    }

    fn process<'a>(&self, st: &'a mut State, id: &str, exec_id: &str) -> Result<&'a mut Proc> {
        let c = self.container(st, id)?;
        if exec_id.is_empty() {
            return Ok(&mut c.init);
        }
        c.execs
            .get_mut(exec_id)
            .ok_or_else(|| ShimError::NotFound(format!("process {exec_id} of container {id} not found")))
    }

    fn socket_dir(&self) -> PathBuf {
        self.root.join(".console")
    }

    // ----- Create -----

    fn create(&self, req: &api::CreateTaskRequest) -> Result<u32> {
        husk::state::validate_id(&req.id).map_err(|e| ShimError::InvalidArgument(e.to_string()))?;
        if self.lock().containers.contains_key(&req.id) {
            return Err(ShimError::AlreadyExists(format!("container {} already exists", req.id)));
        }
        let bundle = PathBuf::from(&req.bundle);
        let mounted = crate::mounts::mount_all(&req.rootfs, &bundle.join("rootfs"))?;
        let stdio = Stdio {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        let prepared = Prepared::open(&stdio, &self.socket_dir())?;
        if !req.checkpoint.is_empty() {
            // Nothing runs until Start restores it; the parent checkpoint
            // needs no telling: CRIU follows the image's `parent` link.
            let work = runc_options(&req.options).map(|o| o.criu_work_path).filter(|w| !w.is_empty()).map(PathBuf::from);
            let restore = PendingRestore { prepared, image: PathBuf::from(&req.checkpoint), work };
            let mut st = self.lock();
            st.containers.insert(
                req.id.clone(),
                Container {
                    bundle: bundle.clone(),
                    mounted: mounted.disarm(),
                    init: Proc::new(stdio.clone()),
                    execs: HashMap::new(),
                    restore: Some(restore),
                },
            );
            drop(st);
            self.publish_create(req, &stdio, 0);
            return Ok(0);
        }
        let opts = CreateOptions {
            id: req.id.clone(),
            bundle: bundle.clone(),
            console_socket: prepared.console_socket(),
            stdio: Some(prepared.raw_fds()),
            systemd_cgroup: systemd_cgroup_option(&req.options),
            systemd_cgroup_by_path: true,
            rootless: husk::rootless::decide(None).unwrap_or(false),
            ..Default::default()
        };
        let pid = container::create(&self.store, &opts)?.pid;
        let attached = match prepared.attach() {
            Ok(a) => a,
            Err(e) => {
                let _ = ops::delete(&self.store, &req.id, true);
                return Err(e);
            }
        };
        let mut init = Proc::new(stdio.clone());
        init.pid = pid;
        init.io = Some(attached);
        {
            let mut st = self.lock();
            st.containers.insert(
                req.id.clone(),
                Container { bundle: bundle.clone(), mounted: mounted.disarm(), init, execs: HashMap::new(), restore: None },
            );
            self.claim(&mut st, pid);
        }
        self.publish_create(req, &stdio, pid);
        Ok(pid as u32)
    }

    fn publish_create(&self, req: &api::CreateTaskRequest, stdio: &Stdio, pid: i32) {
        let stdio = stdio.clone();
        self.publish(
            topics::TASK_CREATE_EVENT_TOPIC,
            TaskCreate {
                container_id: req.id.clone(),
                bundle: req.bundle.clone(),
                rootfs: req.rootfs.clone(),
                io: MessageField::some(TaskIO {
                    stdin: stdio.stdin,
                    stdout: stdio.stdout,
                    stderr: stdio.stderr,
                    terminal: stdio.terminal,
                    ..Default::default()
                }),
                checkpoint: req.checkpoint.clone(),
                pid: pid as u32,
                ..Default::default()
            },
        );
    }

    // ----- Start -----

    fn start(&self, id: &str, exec_id: &str) -> Result<u32> {
        if exec_id.is_empty() {
            return self.start_init(id);
        }
        self.start_exec(id, exec_id)
    }

    fn start_init(&self, id: &str) -> Result<u32> {
        // Held across start so TaskStart goes out before the TaskExit of a
        // process that exits at once.
        let mut st = self.lock();
        let c = self.container(&mut st, id)?;
        if let Some(pending) = c.restore.take() {
            let bundle = c.bundle.clone();
            drop(st);
            return self.start_restore(id, bundle, pending);
        }
        let p = self.process(&mut st, id, "")?;
        if p.phase != Phase::Created {
            return Err(ShimError::FailedPrecondition(format!("container {id} was already started")));
        }
        ops::start(&self.store, id)?;
        p.phase = Phase::Running;
        let pid = p.pid;
        self.publish(
            topics::TASK_START_EVENT_TOPIC,
            TaskStart { container_id: id.into(), pid: pid as u32, ..Default::default() },
        );
        drop(st);
        self.watch_oom(id);
        Ok(pid as u32)
    }

    /// Start of a task created from a checkpoint: CRIU restores it, with
    /// the stdio opened at Create standing in for what it had.
    fn start_restore(&self, id: &str, bundle: PathBuf, pending: PendingRestore) -> Result<u32> {
        let PendingRestore { prepared, image, work } = pending;
        let opts = RestoreOptions {
            id: id.into(),
            bundle,
            image_path: image,
            work_path: work,
            detach: true,
            console_socket: prepared.console_socket(),
            stdio: Some(prepared.raw_fds()),
            rootless: husk::rootless::decide(None).unwrap_or(false),
            ..Default::default()
        };
        let pid = container::restore::restore(&self.store, &opts)?.pid;
        let attached = match prepared.attach() {
            Ok(a) => a,
            Err(e) => {
                let _ = ops::delete(&self.store, id, true);
                return Err(e);
            }
        };
        let mut st = self.lock();
        let p = self.process(&mut st, id, "")?;
        p.pid = pid;
        p.phase = Phase::Running;
        p.io = Some(attached);
        self.publish(
            topics::TASK_START_EVENT_TOPIC,
            TaskStart { container_id: id.into(), pid: pid as u32, ..Default::default() },
        );
        self.claim(&mut st, pid);
        drop(st);
        self.watch_oom(id);
        Ok(pid as u32)
    }

    // ----- Checkpoint -----

    /// As the runc shim: CRIU dumps the container into `path` (containerd
    /// makes it and packs it into the checkpoint image), with the runc
    /// shim's CheckpointOptions when given; unless `exit`, the container
    /// keeps running. CRIU's work files go to `<bundle>/criu-work`, removed
    /// afterwards, unless work_path names a place; a failure leaves
    /// CRIU's log as `<bundle>/criu-dump.log`. With `exit` the init is
    /// killed by CRIU and its exit goes out as any other.
    fn checkpoint(&self, req: &api::CheckpointTaskRequest) -> Result<()> {
        if req.path.is_empty() {
            return Err(ShimError::InvalidArgument("checkpoint without an image path".into()));
        }
        let o = checkpoint_options(&req.options)?;
        let bundle = {
            let mut st = self.lock();
            let c = self.container(&mut st, &req.id)?;
            if c.init.phase != Phase::Running || c.init.exit.is_some() {
                return Err(ShimError::FailedPrecondition(format!("container {} is not running", req.id)));
            }
            c.bundle.clone()
        };
        let own_work = o.work_path.is_empty();
        let work = if own_work { bundle.join("criu-work") } else { PathBuf::from(&o.work_path) };
        let opts = CheckpointOptions {
            id: req.id.clone(),
            image_path: PathBuf::from(&req.path),
            work_path: Some(work.clone()),
            leave_running: !o.exit,
            tcp_established: o.open_tcp,
            ext_unix_sk: o.external_unix_sockets,
            shell_job: o.terminal,
            file_locks: o.file_locks,
            empty_ns: o.empty_namespaces.clone(),
            manage_cgroups_mode: Some(o.cgroups_mode.clone()).filter(|m| !m.is_empty()),
            ..Default::default()
        };
        let res = container::checkpoint::checkpoint(&self.store, &opts);
        if res.is_err() {
            let _ = std::fs::copy(work.join("dump.log"), bundle.join("criu-dump.log"));
        }
        if own_work {
            let _ = std::fs::remove_dir_all(&work);
        }
        res?;
        self.publish(
            topics::TASK_CHECKPOINTED_EVENT_TOPIC,
            TaskCheckpointed { container_id: req.id.clone(), ..Default::default() },
        );
        Ok(())
    }

    fn start_exec(&self, id: &str, exec_id: &str) -> Result<u32> {
        let (spec, stdio, bundle) = {
            let mut st = self.lock();
            let bundle = self.container(&mut st, id)?.bundle.clone();
            let p = self.process(&mut st, id, exec_id)?;
            if p.phase != Phase::Created {
                return Err(ShimError::FailedPrecondition(format!("process {exec_id} was already started")));
            }
            (p.spec.clone().unwrap_or_default(), p.stdio.clone(), bundle)
        };
        let process_file = bundle.join(format!(".husk-exec-{exec_id}.json"));
        let pid_file = bundle.join(format!(".husk-exec-{exec_id}.pid"));
        std::fs::write(&process_file, &spec).map_err(io(process_file.display().to_string()))?;
        let res = (|| {
            let prepared = Prepared::open(&stdio, &self.socket_dir())?;
            let opts = ExecOptions {
                id: id.into(),
                process: Some(process_file.clone()),
                tty: stdio.terminal,
                console_socket: prepared.console_socket(),
                detach: true,
                pid_file: Some(pid_file.clone()),
                stdio: Some(prepared.raw_fds()),
                rootless: husk::rootless::decide(None).unwrap_or(false),
                ..Default::default()
            };
            container::exec::exec(&self.store, &opts)?;
            Ok::<_, ShimError>((read_pid_file(&pid_file)?, prepared.attach()?))
        })();
        let _ = std::fs::remove_file(&process_file);
        let _ = std::fs::remove_file(&pid_file);
        let (pid, attached) = res?;
        let mut st = self.lock();
        let p = self.process(&mut st, id, exec_id)?;
        p.pid = pid;
        p.phase = Phase::Running;
        p.io = Some(attached);
        p.spec = None;
        self.publish(
            topics::TASK_EXEC_STARTED_EVENT_TOPIC,
            TaskExecStarted { container_id: id.into(), exec_id: exec_id.into(), pid: pid as u32, ..Default::default() },
        );
        self.claim(&mut st, pid);
        Ok(pid as u32)
    }

    /// TaskOOM events from the cgroup's OOM notifications, until the
    /// container stops or is deleted.
    fn watch_oom(&self, id: &str) {
        let store = Store::new(&self.root);
        let id = id.to_string();
        let events = self.events.lock().unwrap_or_else(|e| e.into_inner()).clone();
        std::thread::spawn(move || {
            let _ = cgroup_ops::events(&store, &id, Duration::from_secs(10), |ev| {
                if ev.typ == "oom" {
                    let ev = TaskOOM { container_id: id.clone(), ..Default::default() };
                    let _ = events.send(events::pack(topics::TASK_OOM_EVENT_TOPIC, &ev));
                }
                true
            });
        });
    }

    // ----- Delete -----

    fn delete(&self, id: &str, exec_id: &str) -> Result<api::DeleteResponse> {
        let mut st = self.lock();
        if !exec_id.is_empty() {
            let c = self.container(&mut st, id)?;
            let p = c
                .execs
                .get(exec_id)
                .ok_or_else(|| ShimError::NotFound(format!("process {exec_id} of container {id} not found")))?;
            if p.phase == Phase::Running {
                return Err(ShimError::FailedPrecondition(format!("process {exec_id} is still running")));
            }
            let p = c.execs.remove(exec_id).ok_or_else(|| not_found(id))?;
            return Ok(delete_response(&p));
        }
        let c = self.container(&mut st, id)?;
        if c.init.phase == Phase::Running {
            return Err(ShimError::FailedPrecondition(format!("container {id} is still running: kill it first")));
        }
        match ops::delete(&self.store, id, true) {
            // Gone already: checkpointed with exit (husk removed it, as
            // runc does), or created from a checkpoint and never restored.
            Err(container::ContainerError::State(husk::state::StateError::NotFound)) => {}
            r => r?,
        }
        if let Some(t) = &c.mounted {
            crate::mounts::unmount(t)?;
        }
        let c = st.containers.remove(id).ok_or_else(|| not_found(id))?;
        let resp = delete_response(&c.init);
        self.publish(
            topics::TASK_DELETE_EVENT_TOPIC,
            TaskDelete {
                container_id: id.into(),
                pid: resp.pid,
                exit_status: resp.exit_status,
                exited_at: resp.exited_at.clone(),
                id: id.into(),
                ..Default::default()
            },
        );
        Ok(resp)
    }

    // ----- Kill -----

    fn kill(&self, id: &str, exec_id: &str, sig: u32, all: bool) -> Result<()> {
        let sig = i32::try_from(sig).map_err(|_| ShimError::InvalidArgument(format!("bad signal {sig}")))?;
        let mut st = self.lock();
        let p = self.process(&mut st, id, exec_id)?;
        if p.exit.is_some() {
            return Err(ShimError::NotFound(format!("process {} already finished", if exec_id.is_empty() { id } else { exec_id })));
        }
        if !exec_id.is_empty() {
            if p.pid == 0 {
                return Err(ShimError::NotFound(format!("process {exec_id} not started")));
            }
            return nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p.pid),
                nix::sys::signal::Signal::try_from(sig).map_err(|e| ShimError::Sys(format!("signal {sig}"), e))?,
            )
            .map_err(|e| ShimError::Sys(format!("kill {}", p.pid), e));
        }
        ops::kill(&self.store, id, sig, all)?;
        Ok(())
    }

    // ----- State -----

    fn state(&self, id: &str, exec_id: &str) -> Result<api::StateResponse> {
        let mut st = self.lock();
        let bundle = self.container(&mut st, id)?.bundle.clone();
        let p = self.process(&mut st, id, exec_id)?;
        let status = match p.phase {
            Phase::Created => TaskStatus::CREATED,
            Phase::Stopped => TaskStatus::STOPPED,
            Phase::Running if exec_id.is_empty() => match ops::status(&self.store, id) {
                Ok((_, husk::state::Status::Paused)) => TaskStatus::PAUSED,
                Ok((_, husk::state::Status::Stopped)) => TaskStatus::STOPPED,
                _ => TaskStatus::RUNNING,
            },
            Phase::Running => TaskStatus::RUNNING,
        };
        let (exit_status, exited_at) = match &p.exit {
            Some((c, t)) => (*c, MessageField::some(t.clone())),
            None => (0, MessageField::none()),
        };
        Ok(api::StateResponse {
            id: if exec_id.is_empty() { id.into() } else { exec_id.into() },
            bundle: bundle.display().to_string(),
            pid: p.pid as u32,
            status: status.into(),
            stdin: p.stdio.stdin.clone(),
            stdout: p.stdio.stdout.clone(),
            stderr: p.stdio.stderr.clone(),
            terminal: p.stdio.terminal,
            exit_status,
            exited_at,
            exec_id: exec_id.into(),
            ..Default::default()
        })
    }

    // ----- Exec (register) -----

    fn add_exec(&self, req: &api::ExecProcessRequest) -> Result<()> {
        let mut st = self.lock();
        let c = self.container(&mut st, &req.id)?;
        if c.init.exit.is_some() {
            return Err(ShimError::FailedPrecondition(format!("container {} is stopped", req.id)));
        }
        if c.execs.contains_key(&req.exec_id) {
            return Err(ShimError::AlreadyExists(format!("process {} already exists", req.exec_id)));
        }
        let spec = req.spec.as_ref().map(|a| a.value.clone()).ok_or_else(|| ShimError::InvalidArgument("exec without a process spec".into()))?;
        let mut p = Proc::new(Stdio {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        });
        p.spec = Some(spec);
        c.execs.insert(req.exec_id.clone(), p);
        self.publish(
            topics::TASK_EXEC_ADDED_EVENT_TOPIC,
            TaskExecAdded { container_id: req.id.clone(), exec_id: req.exec_id.clone(), ..Default::default() },
        );
        Ok(())
    }

    // ----- Wait -----

    fn wait(&self, id: &str, exec_id: &str) -> Result<api::WaitResponse> {
        let mut st = self.lock();
        loop {
            let p = self.process(&mut st, id, exec_id)?;
            if let Some((code, t)) = &p.exit {
                return Ok(api::WaitResponse { exit_status: *code, exited_at: MessageField::some(t.clone()), ..Default::default() });
            }
            st = self.exited.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn running_init(&self, id: &str) -> Result<()> {
        let mut st = self.lock();
        let p = self.process(&mut st, id, "")?;
        if p.exit.is_some() {
            return Err(ShimError::FailedPrecondition(format!("container {id} is stopped")));
        }
        Ok(())
    }
}

fn read_pid_file(path: &std::path::Path) -> Result<i32> {
    let text = std::fs::read_to_string(path).map_err(io(path.display().to_string()))?;
    text.trim()
        .parse()
        .map_err(|_| ShimError::Io(path.display().to_string(), std::io::Error::other(format!("bad pid {text:?}"))))
}

fn find_pid(st: &mut State, pid: i32) -> Option<&mut Proc> {
    for c in st.containers.values_mut() {
        if c.init.pid == pid && c.init.exit.is_none() {
            return Some(&mut c.init);
        }
        if let Some(p) = c.execs.values_mut().find(|p| p.pid == pid && p.exit.is_none()) {
            return Some(p);
        }
    }
    None
}

fn delete_response(p: &Proc) -> api::DeleteResponse {
    let (exit_status, exited_at) = match &p.exit {
        Some((c, t)) => (*c, t.clone()),
        // Never started, or killed by delete itself.
        None => (128 + libc::SIGKILL as u32, now()),
    };
    api::DeleteResponse { pid: p.pid as u32, exit_status, exited_at: MessageField::some(exited_at), ..Default::default() }
}

fn empty() -> api::Empty {
    api::Empty::default()
}

impl containerd_shim::Task for TaskService {
    fn state(&self, _: &TtrpcContext, req: api::StateRequest) -> TtrpcResult<api::StateResponse> {
        Ok(self.inner.state(&req.id, &req.exec_id)?)
    }

    fn create(&self, _: &TtrpcContext, req: api::CreateTaskRequest) -> TtrpcResult<api::CreateTaskResponse> {
        let pid = self.inner.create(&req)?;
        Ok(api::CreateTaskResponse { pid, ..Default::default() })
    }

    fn start(&self, _: &TtrpcContext, req: api::StartRequest) -> TtrpcResult<api::StartResponse> {
        let pid = self.inner.start(&req.id, &req.exec_id)?;
        Ok(api::StartResponse { pid, ..Default::default() })
    }

    fn delete(&self, _: &TtrpcContext, req: api::DeleteRequest) -> TtrpcResult<api::DeleteResponse> {
        Ok(self.inner.delete(&req.id, &req.exec_id)?)
    }

    fn pids(&self, _: &TtrpcContext, req: api::PidsRequest) -> TtrpcResult<api::PidsResponse> {
        let pids = cgroup_ops::pids(&self.inner.store, &req.id).map_err(ShimError::from)?;
        Ok(api::PidsResponse {
            processes: pids.into_iter().map(|p| containerd_shim::protos::types::task::ProcessInfo { pid: p as u32, ..Default::default() }).collect(),
            ..Default::default()
        })
    }

    fn pause(&self, _: &TtrpcContext, req: api::PauseRequest) -> TtrpcResult<api::Empty> {
        self.inner.running_init(&req.id)?;
        cgroup_ops::pause(&self.inner.store, &req.id).map_err(ShimError::from)?;
        self.inner.publish(topics::TASK_PAUSED_EVENT_TOPIC, TaskPaused { container_id: req.id, ..Default::default() });
        Ok(empty())
    }

    fn resume(&self, _: &TtrpcContext, req: api::ResumeRequest) -> TtrpcResult<api::Empty> {
        self.inner.running_init(&req.id)?;
        cgroup_ops::resume(&self.inner.store, &req.id).map_err(ShimError::from)?;
        self.inner.publish(topics::TASK_RESUMED_EVENT_TOPIC, TaskResumed { container_id: req.id, ..Default::default() });
        Ok(empty())
    }

    fn checkpoint(&self, _: &TtrpcContext, req: api::CheckpointTaskRequest) -> TtrpcResult<api::Empty> {
        self.inner.checkpoint(&req)?;
        Ok(empty())
    }

    fn kill(&self, _: &TtrpcContext, req: api::KillRequest) -> TtrpcResult<api::Empty> {
        self.inner.kill(&req.id, &req.exec_id, req.signal, req.all)?;
        Ok(empty())
    }

    fn exec(&self, _: &TtrpcContext, req: api::ExecProcessRequest) -> TtrpcResult<api::Empty> {
        self.inner.add_exec(&req)?;
        Ok(empty())
    }

    fn resize_pty(&self, _: &TtrpcContext, req: api::ResizePtyRequest) -> TtrpcResult<api::Empty> {
        let console = {
            let mut st = self.inner.lock();
            let p = self.inner.process(&mut st, &req.id, &req.exec_id)?;
            p.io.as_ref().and_then(|io| io.console.clone())
        };
        let Some(master) = console else {
            return Err(ShimError::FailedPrecondition("the process has no terminal".into()).into());
        };
        let (h, w) = (u16::try_from(req.height).unwrap_or(u16::MAX), u16::try_from(req.width).unwrap_or(u16::MAX));
        husk::console::set_size(&*master, h, w)
            .map_err(|e| ShimError::Io("resizing the terminal".into(), std::io::Error::other(e.to_string())))?;
        Ok(empty())
    }

    fn close_io(&self, _: &TtrpcContext, req: api::CloseIORequest) -> TtrpcResult<api::Empty> {
        if req.stdin {
            let mut st = self.inner.lock();
            let p = self.inner.process(&mut st, &req.id, &req.exec_id)?;
            if let Some(io) = &p.io {
                io.stdin.lock().unwrap_or_else(|e| e.into_inner()).take();
            }
        }
        Ok(empty())
    }

    fn update(&self, _: &TtrpcContext, req: api::UpdateTaskRequest) -> TtrpcResult<api::Empty> {
        self.inner.running_init(&req.id)?;
        let any = req.resources.as_ref().ok_or_else(|| ShimError::InvalidArgument("update without resources".into()))?;
        let r = husk::cgroups::Resources::from_json(&any.value).map_err(|e| ShimError::InvalidArgument(e.to_string()))?;
        cgroup_ops::update(&self.inner.store, &req.id, r).map_err(ShimError::from)?;
        Ok(empty())
    }

    fn wait(&self, _: &TtrpcContext, req: api::WaitRequest) -> TtrpcResult<api::WaitResponse> {
        Ok(self.inner.wait(&req.id, &req.exec_id)?)
    }

    fn stats(&self, _: &TtrpcContext, req: api::StatsRequest) -> TtrpcResult<api::StatsResponse> {
        let ev = cgroup_ops::stats(&self.inner.store, &req.id).map_err(ShimError::from)?;
        let stats = ev.data.ok_or_else(|| ShimError::NotFound(format!("no stats for container {}", req.id)))?;
        let (value, type_url) = crate::metrics::for_host(&stats);
        let value = value.map_err(|e| ShimError::Io("encoding metrics".into(), std::io::Error::other(e.to_string())))?;
        let any = Any { type_url: type_url.into(), value, ..Default::default() };
        Ok(api::StatsResponse { stats: MessageField::some(any), ..Default::default() })
    }

    fn connect(&self, _: &TtrpcContext, req: api::ConnectRequest) -> TtrpcResult<api::ConnectResponse> {
        let mut st = self.inner.lock();
        let task_pid = self.inner.container(&mut st, &req.id).map(|c| c.init.pid as u32).unwrap_or(0);
        Ok(api::ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            version: format!("husk shim {}", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        })
    }

    fn shutdown(&self, _: &TtrpcContext, req: api::ShutdownRequest) -> TtrpcResult<api::Empty> {
        let st = self.inner.lock();
        if req.now || st.containers.is_empty() {
            let _ = std::fs::remove_dir(self.inner.socket_dir());
            log::info!("shutting down the shim of namespace {}", self.inner.namespace);
            self.inner.exit.signal();
        }
        Ok(empty())
    }
}

/// The runc shim's `SystemdCgroup` option (containerd's
/// `runtimes.<name>.options`), which engines on systemd hosts set: the
/// container's cgroup is then a systemd unit, as with `husk --systemd-cgroup`.
fn systemd_cgroup_option(options: &containerd_shim::protos::protobuf::MessageField<containerd_shim::protos::protobuf::well_known_types::any::Any>) -> bool {
    runc_options(options).is_some_and(|o| o.systemd_cgroup)
}

/// The runc shim's options (`containerd.runc.v1.Options`), if given.
fn runc_options(
    options: &containerd_shim::protos::protobuf::MessageField<containerd_shim::protos::protobuf::well_known_types::any::Any>,
) -> Option<containerd_shim::protos::shim::oci::Options> {
    use containerd_shim::protos::protobuf::Message;
    let a = options.as_ref().filter(|a| a.type_url.ends_with("containerd.runc.v1.Options"))?;
    containerd_shim::protos::shim::oci::Options::parse_from_bytes(&a.value).ok()
}

/// The runc shim's `containerd.runc.v1.CheckpointOptions` (what `ctr
/// tasks checkpoint` and CRI send for runc runtimes); none: the defaults
/// (leave running). Another type is refused.
fn checkpoint_options(
    options: &containerd_shim::protos::protobuf::MessageField<containerd_shim::protos::protobuf::well_known_types::any::Any>,
) -> Result<containerd_shim::protos::shim::oci::CheckpointOptions> {
    use containerd_shim::protos::protobuf::Message;
    let Some(a) = options.as_ref() else { return Ok(Default::default()) };
    if !a.type_url.ends_with("containerd.runc.v1.CheckpointOptions") {
        return Err(ShimError::InvalidArgument(format!("unknown checkpoint options type {:?}", a.type_url)));
    }
    containerd_shim::protos::shim::oci::CheckpointOptions::parse_from_bytes(&a.value)
        .map_err(|e| ShimError::InvalidArgument(format!("checkpoint options: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim::protos::protobuf::{well_known_types::any::Any, Message, MessageField};

    #[test]
    fn the_runc_shims_systemd_cgroup_option_is_read() {
        let any = |systemd: bool, url: &str| {
            let mut o = containerd_shim::protos::shim::oci::Options::new();
            o.systemd_cgroup = systemd;
            o.binary_name = "/usr/bin/husk".into();
            MessageField::some(Any { type_url: url.into(), value: o.write_to_bytes().unwrap(), ..Default::default() })
        };
        assert!(systemd_cgroup_option(&any(true, "containerd.runc.v1.Options")));
        assert!(systemd_cgroup_option(&any(true, "type.googleapis.com/containerd.runc.v1.Options")));
        assert!(!systemd_cgroup_option(&any(false, "containerd.runc.v1.Options")));
        assert!(!systemd_cgroup_option(&any(true, "something.else.Options")));
        assert!(!systemd_cgroup_option(&MessageField::none()));
    }

    #[test]
    fn the_runc_shims_checkpoint_options_are_read() {
        let mut o = containerd_shim::protos::shim::oci::CheckpointOptions::new();
        o.exit = true;
        o.open_tcp = true;
        o.empty_namespaces = vec!["network".into()];
        o.work_path = "/w".into();
        let any = |url: &str| MessageField::some(Any { type_url: url.into(), value: o.write_to_bytes().unwrap(), ..Default::default() });
        let got = checkpoint_options(&any("type.googleapis.com/containerd.runc.v1.CheckpointOptions")).unwrap();
        assert!(got.exit && got.open_tcp && !got.terminal);
        assert_eq!(got.empty_namespaces, ["network"]);
        assert_eq!(got.work_path, "/w");
        // ctr sends none for runtimes other than runc's: leave running.
        assert!(!checkpoint_options(&MessageField::none()).unwrap().exit);
        assert!(checkpoint_options(&any("containerd.runc.v1.Options")).is_err());
    }
}
