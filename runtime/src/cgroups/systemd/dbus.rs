//! The few D-Bus calls the systemd cgroup driver makes, spoken directly on
//! a unix socket: SASL EXTERNAL, method calls with their replies and
//! errors, and signals. Only the wire types systemd's Manager interface
//! needs are encoded (little-endian, as the sender chooses).
//!
//! Why not a D-Bus crate: husk's RSS follows the size of its binary on
//! current kernels (see the Makefile), and every `husk run` would pay for a
//! general client and its async runtime although only `--systemd-cgroup`
//! uses it. This is a few hundred lines with no dependency, and every
//! read has a deadline, so a stuck bus is an error, never a hang.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum DbusError {
    #[error("D-Bus {0}: {1}")]
    Io(String, std::io::Error),
    #[error("D-Bus: authentication refused: {0:?}")]
    Auth(String),
    #[error("D-Bus: malformed message: {0}")]
    Malformed(&'static str),
    #[error("D-Bus: no answer within {0:?}")]
    Timeout(Duration),
    /// An error reply: its name and message.
    #[error("{0}: {1}")]
    Remote(String, String),
}

/// A D-Bus value of the types the driver uses.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Byte(u8),
    Bool(bool),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    Str(String),
    Path(String),
    Sig(String),
    /// Element signature and elements.
    Array(String, Vec<Value>),
    Struct(Vec<Value>),
    Variant(Box<Value>),
}

impl Value {
    pub fn signature(&self) -> String {
        match self {
            Value::Byte(_) => "y".into(),
            Value::Bool(_) => "b".into(),
            Value::U32(_) => "u".into(),
            Value::I32(_) => "i".into(),
            Value::U64(_) => "t".into(),
            Value::I64(_) => "x".into(),
            Value::Str(_) => "s".into(),
            Value::Path(_) => "o".into(),
            Value::Sig(_) => "g".into(),
            Value::Array(e, _) => format!("a{e}"),
            Value::Struct(f) => format!("({})", f.iter().map(Value::signature).collect::<String>()),
            Value::Variant(_) => "v".into(),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::Path(s) | Value::Sig(s) => Some(s),
            _ => None,
        }
    }
}

/// An `a(sv)` property list, as StartTransientUnit and SetUnitProperties
/// take it.
pub fn properties(props: Vec<(&str, Value)>) -> Value {
    Value::Array(
        "(sv)".into(),
        props.into_iter().map(|(k, v)| Value::Struct(vec![Value::Str(k.into()), Value::Variant(Box::new(v))])).collect(),
    )
}

fn align_of(sig: u8) -> usize {
    match sig {
        b'y' | b'g' | b'v' => 1,
        b'n' | b'q' => 2,
        b'b' | b'i' | b'u' | b's' | b'o' | b'a' | b'h' => 4,
        _ => 8, // t x d ( {
    }
}

fn pad(buf: &mut Vec<u8>, align: usize) {
    while buf.len() % align != 0 {
        buf.push(0);
    }
}

fn put(buf: &mut Vec<u8>, v: &Value) {
    let sig = v.signature();
    pad(buf, align_of(sig.as_bytes()[0]));
    match v {
        Value::Byte(b) => buf.push(*b),
        Value::Bool(b) => buf.extend_from_slice(&(*b as u32).to_le_bytes()),
        Value::U32(n) => buf.extend_from_slice(&n.to_le_bytes()),
        Value::I32(n) => buf.extend_from_slice(&n.to_le_bytes()),
        Value::U64(n) => buf.extend_from_slice(&n.to_le_bytes()),
        Value::I64(n) => buf.extend_from_slice(&n.to_le_bytes()),
        Value::Str(s) | Value::Path(s) => {
            buf.extend_from_slice(&(s.len() as u32).to_le_bytes());
            buf.extend_from_slice(s.as_bytes());
            buf.push(0);
        }
        Value::Sig(s) => {
            buf.push(s.len() as u8);
            buf.extend_from_slice(s.as_bytes());
            buf.push(0);
        }
        Value::Array(elem, items) => {
            let len_at = buf.len();
            buf.extend_from_slice(&[0; 4]);
            // The length counts from the first element, after its padding.
            pad(buf, align_of(elem.as_bytes()[0]));
            let start = buf.len();
            for i in items {
                put(buf, i);
            }
            let len = (buf.len() - start) as u32;
            buf[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
        }
        Value::Struct(fields) => {
            for f in fields {
                put(buf, f);
            }
        }
        Value::Variant(inner) => {
            put(buf, &Value::Sig(inner.signature()));
            put(buf, inner);
        }
    }
}

/// Reads values of a signature from a message body.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn align(&mut self, a: usize) -> Result<(), DbusError> {
        self.pos = self.pos.div_ceil(a) * a;
        if self.pos > self.buf.len() {
            return Err(DbusError::Malformed("padding past the end"));
        }
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<&[u8], DbusError> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len()).ok_or(DbusError::Malformed("value past the end"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32, DbusError> {
        self.align(4)?;
        Ok(u32::from_le_bytes(self.take(4)?.try_into().map_err(|_| DbusError::Malformed("u32"))?))
    }

    fn u64(&mut self) -> Result<u64, DbusError> {
        self.align(8)?;
        Ok(u64::from_le_bytes(self.take(8)?.try_into().map_err(|_| DbusError::Malformed("u64"))?))
    }

    fn string(&mut self, len: usize) -> Result<String, DbusError> {
        let s = String::from_utf8(self.take(len)?.to_vec()).map_err(|_| DbusError::Malformed("string not UTF-8"))?;
        self.take(1)?;
        Ok(s)
    }

    /// One complete type from the front of `sig`, which is advanced.
    fn value(&mut self, sig: &mut &[u8]) -> Result<Value, DbusError> {
        let (&c, rest) = sig.split_first().ok_or(DbusError::Malformed("empty signature"))?;
        *sig = rest;
        Ok(match c {
            b'y' => Value::Byte(self.take(1)?[0]),
            b'b' => Value::Bool(self.u32()? != 0),
            b'u' => Value::U32(self.u32()?),
            b'i' => Value::I32(self.u32()? as i32),
            b't' => Value::U64(self.u64()?),
            b'x' => Value::I64(self.u64()? as i64),
            b's' | b'o' => {
                let n = self.u32()? as usize;
                let s = self.string(n)?;
                if c == b's' { Value::Str(s) } else { Value::Path(s) }
            }
            b'g' => {
                let n = self.take(1)?[0] as usize;
                Value::Sig(self.string(n)?)
            }
            b'v' => {
                let n = self.take(1)?[0] as usize;
                let inner = self.string(n)?;
                let mut s = inner.as_bytes();
                Value::Variant(Box::new(self.value(&mut s)?))
            }
            b'a' => {
                let elem_len = complete_type_len(sig)?;
                let elem = &sig[..elem_len];
                *sig = &sig[elem_len..];
                let n = self.u32()? as usize;
                self.align(align_of(elem[0]))?;
                let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len()).ok_or(DbusError::Malformed("array past the end"))?;
                let mut items = Vec::new();
                while self.pos < end {
                    let mut s = elem;
                    items.push(self.value(&mut s)?);
                }
                Value::Array(String::from_utf8_lossy(elem).into_owned(), items)
            }
            b'(' | b'{' => {
                self.align(8)?;
                let close = if c == b'(' { b')' } else { b'}' };
                let mut fields = Vec::new();
                while sig.first() != Some(&close) {
                    fields.push(self.value(sig)?);
                }
                *sig = &sig[1..];
                Value::Struct(fields)
            }
            _ => return Err(DbusError::Malformed("unsupported type in signature")),
        })
    }
}

/// Length of the complete type at the front of `sig`.
fn complete_type_len(sig: &[u8]) -> Result<usize, DbusError> {
    match sig.first() {
        Some(b'a') => Ok(1 + complete_type_len(&sig[1..])?),
        Some(&open @ (b'(' | b'{')) => {
            let close = if open == b'(' { b')' } else { b'}' };
            let mut depth = 0;
            for (i, &c) in sig.iter().enumerate() {
                if c == open {
                    depth += 1;
                } else if c == close {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(i + 1);
                    }
                }
            }
            Err(DbusError::Malformed("unbalanced signature"))
        }
        Some(_) => Ok(1),
        None => Err(DbusError::Malformed("empty signature")),
    }
}

pub fn decode(sig: &str, body: &[u8]) -> Result<Vec<Value>, DbusError> {
    let mut r = Reader { buf: body, pos: 0 };
    let mut s = sig.as_bytes();
    let mut out = Vec::new();
    while !s.is_empty() {
        out.push(r.value(&mut s)?);
    }
    Ok(out)
}

const METHOD_CALL: u8 = 1;
const METHOD_RETURN: u8 = 2;
const ERROR: u8 = 3;
const SIGNAL: u8 = 4;

/// A received message: what the driver looks at.
#[derive(Debug)]
pub struct Message {
    pub kind: u8,
    pub reply_serial: Option<u32>,
    pub member: Option<String>,
    pub error_name: Option<String>,
    pub body: Vec<Value>,
}

/// A method call to encode.
pub struct Call<'a> {
    pub destination: Option<&'a str>,
    pub path: &'a str,
    pub interface: &'a str,
    pub member: &'a str,
    pub args: Vec<Value>,
}

pub fn encode_call(c: &Call, serial: u32) -> Vec<u8> {
    let mut body = Vec::new();
    for a in &c.args {
        put(&mut body, a);
    }
    let sig: String = c.args.iter().map(Value::signature).collect();
    let field = |code: u8, v: Value| Value::Struct(vec![Value::Byte(code), Value::Variant(Box::new(v))]);
    let mut fields = vec![
        field(1, Value::Path(c.path.into())),
        field(2, Value::Str(c.interface.into())),
        field(3, Value::Str(c.member.into())),
    ];
    if let Some(d) = c.destination {
        fields.push(field(6, Value::Str(d.into())));
    }
    if !sig.is_empty() {
        fields.push(field(8, Value::Sig(sig)));
    }
    let mut msg = vec![b'l', METHOD_CALL, 0, 1];
    msg.extend_from_slice(&(body.len() as u32).to_le_bytes());
    msg.extend_from_slice(&serial.to_le_bytes());
    put(&mut msg, &Value::Array("(yv)".into(), fields));
    pad(&mut msg, 8);
    msg.extend_from_slice(&body);
    msg
}

/// Parse one whole message (as [`Connection::read_message`] frames it).
pub fn decode_message(raw: &[u8]) -> Result<Message, DbusError> {
    if raw.len() < 16 || raw[0] != b'l' {
        // systemd and dbus-daemon answer in the caller's byte order.
        return Err(DbusError::Malformed("not a little-endian message"));
    }
    let body_len = u32::from_le_bytes(raw[4..8].try_into().map_err(|_| DbusError::Malformed("header"))?) as usize;
    let mut r = Reader { buf: raw, pos: 12 };
    let mut sig: &[u8] = b"a(yv)";
    let fields = r.value(&mut sig)?;
    r.align(8)?;
    let body_raw = raw.get(r.pos..r.pos + body_len).ok_or(DbusError::Malformed("body past the end"))?;
    let mut m = Message { kind: raw[1], reply_serial: None, member: None, error_name: None, body: Vec::new() };
    let mut body_sig = String::new();
    if let Value::Array(_, fields) = fields {
        for f in fields {
            let Value::Struct(f) = f else { continue };
            let (Some(Value::Byte(code)), Some(Value::Variant(v))) = (f.first(), f.get(1)) else { continue };
            match (code, v.as_ref()) {
                (3, Value::Str(s)) => m.member = Some(s.clone()),
                (4, Value::Str(s)) => m.error_name = Some(s.clone()),
                (5, Value::U32(n)) => m.reply_serial = Some(*n),
                (8, Value::Sig(s)) => body_sig = s.clone(),
                _ => {}
            }
        }
    }
    m.body = decode(&body_sig, body_raw)?;
    Ok(m)
}

pub struct Connection {
    sock: UnixStream,
    serial: u32,
    timeout: Duration,
    /// Signals read while waiting for a reply, for [`Connection::wait_signal`].
    pending: Vec<Message>,
    buf: Vec<u8>,
}

impl Connection {
    /// Connect and authenticate as our uid. `bus`: a message bus (which
    /// wants Hello first), not systemd's private peer-to-peer socket.
    pub fn open(path: &Path, bus: bool, timeout: Duration) -> Result<Connection, DbusError> {
        let ctx = |what: &str| format!("{what} {}", path.display());
        let sock = UnixStream::connect(path).map_err(|e| DbusError::Io(ctx("connecting to"), e))?;
        sock.set_write_timeout(Some(timeout)).map_err(|e| DbusError::Io(ctx("socket"), e))?;
        let mut c = Connection { sock, serial: 0, timeout, pending: Vec::new(), buf: Vec::new() };
        // The peer sees our uid in its own (the initial) user namespace.
        let uid: String = crate::rootless::host_euid().to_string().bytes().map(|b| format!("{b:02x}")).collect();
        c.write(format!("\0AUTH EXTERNAL {uid}\r\n").as_bytes())?;
        let line = c.read_line(Instant::now() + timeout)?;
        if !line.starts_with("OK ") {
            return Err(DbusError::Auth(line));
        }
        c.write(b"BEGIN\r\n")?;
        if bus {
            c.call(&Call {
                destination: Some("org.freedesktop.DBus"),
                path: "/org/freedesktop/DBus",
                interface: "org.freedesktop.DBus",
                member: "Hello",
                args: vec![],
            })?;
        }
        Ok(c)
    }

    fn write(&mut self, b: &[u8]) -> Result<(), DbusError> {
        self.sock.write_all(b).map_err(|e| DbusError::Io("write".into(), e))
    }

    /// Read more bytes into the buffer, waiting at most until `deadline`.
    fn fill(&mut self, deadline: Instant) -> Result<(), DbusError> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(DbusError::Timeout(self.timeout));
        }
        self.sock.set_read_timeout(Some(left)).map_err(|e| DbusError::Io("socket".into(), e))?;
        let mut chunk = [0u8; 4096];
        match self.sock.read(&mut chunk) {
            Ok(0) => Err(DbusError::Io("read".into(), std::io::ErrorKind::UnexpectedEof.into())),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                Err(DbusError::Timeout(self.timeout))
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(()),
            Err(e) => Err(DbusError::Io("read".into(), e)),
        }
    }

    fn read_line(&mut self, deadline: Instant) -> Result<String, DbusError> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 2);
                return Ok(line);
            }
            self.fill(deadline)?;
        }
    }

    fn read_message(&mut self, deadline: Instant) -> Result<Message, DbusError> {
        loop {
            if self.buf.len() >= 16 {
                let n = |r: std::ops::Range<usize>| u32::from_le_bytes(self.buf[r].try_into().unwrap_or([0; 4])) as usize;
                let (body, fields) = (n(4..8), n(12..16));
                let total = (16 + fields).div_ceil(8) * 8 + body;
                if total > 128 << 20 {
                    return Err(DbusError::Malformed("message too large"));
                }
                if self.buf.len() >= total {
                    let raw: Vec<u8> = self.buf.drain(..total).collect();
                    return decode_message(&raw);
                }
            }
            self.fill(deadline)?;
        }
    }

    /// Call a method and wait for its reply's body; an error reply is
    /// [`DbusError::Remote`].
    pub fn call(&mut self, c: &Call) -> Result<Vec<Value>, DbusError> {
        self.serial += 1;
        let serial = self.serial;
        self.write(&encode_call(c, serial))?;
        let deadline = Instant::now() + self.timeout;
        loop {
            let m = self.read_message(deadline)?;
            match m.kind {
                METHOD_RETURN if m.reply_serial == Some(serial) => return Ok(m.body),
                ERROR if m.reply_serial == Some(serial) => {
                    let text = m.body.first().and_then(Value::as_str).unwrap_or("").to_string();
                    return Err(DbusError::Remote(m.error_name.unwrap_or_default(), text));
                }
                SIGNAL => self.pending.push(m),
                _ => {}
            }
        }
    }

    /// Wait for a signal named `member` whose body `matches`.
    pub fn wait_signal(&mut self, member: &str, timeout: Duration, matches: impl Fn(&[Value]) -> bool) -> Result<Vec<Value>, DbusError> {
        let is_it = |m: &Message| m.kind == SIGNAL && m.member.as_deref() == Some(member) && matches(&m.body);
        if let Some(i) = self.pending.iter().position(is_it) {
            return Ok(self.pending.remove(i).body);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let m = self.read_message(deadline).map_err(|e| match e {
                DbusError::Timeout(_) => DbusError::Timeout(timeout),
                e => e,
            })?;
            if is_it(&m) {
                return Ok(m.body);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip() {
        let v = vec![
            Value::Str("husk-c1.scope".into()),
            Value::Str("replace".into()),
            properties(vec![
                ("Delegate", Value::Bool(true)),
                ("PIDs", Value::Array("u".into(), vec![Value::U32(42)])),
                ("MemoryMax", Value::U64(1 << 30)),
                ("AllowedCPUs", Value::Array("y".into(), vec![Value::Byte(3)])),
                ("DeviceAllow", Value::Array("(ss)".into(), vec![Value::Struct(vec![Value::Str("/dev/null".into()), Value::Str("rwm".into())])])),
            ]),
            Value::Array("(sa(sv))".into(), vec![]),
        ];
        let mut body = Vec::new();
        for a in &v {
            put(&mut body, a);
        }
        let sig: String = v.iter().map(Value::signature).collect();
        assert_eq!(sig, "ssa(sv)a(sa(sv))");
        assert_eq!(decode(&sig, &body).unwrap(), v);
    }

    #[test]
    fn a_call_is_framed_as_the_spec_says() {
        let raw = encode_call(
            &Call { destination: Some("org.freedesktop.systemd1"), path: "/org/freedesktop/systemd1", interface: "org.freedesktop.systemd1.Manager", member: "GetUnit", args: vec![Value::Str("dbus.service".into())] },
            7,
        );
        // Fixed header, then the field array padded to 8, then the body.
        assert_eq!(&raw[..4], &[b'l', 1, 0, 1]);
        assert_eq!(u32::from_le_bytes(raw[8..12].try_into().unwrap()), 7);
        let m = decode_message(&raw).unwrap();
        assert_eq!(m.member.as_deref(), Some("GetUnit"));
        assert_eq!(m.body, vec![Value::Str("dbus.service".into())]);
        // Body length: 4 (len) + 12 + NUL.
        assert_eq!(u32::from_le_bytes(raw[4..8].try_into().unwrap()), 17);
    }

    #[test]
    fn truncated_or_garbage_input_is_an_error_not_a_panic() {
        let raw = encode_call(&Call { destination: None, path: "/", interface: "a.b", member: "C", args: vec![Value::Str("x".into())] }, 1);
        for n in 0..raw.len() {
            let _ = decode_message(&raw[..n]);
        }
        assert!(decode("a(sv)", &[255, 255, 255, 255]).is_err());
        assert!(decode("(s", &[]).is_err());
    }

    /// Against a real message bus: a private dbus-daemon (Debian's
    /// dbus-daemon and dbus-bin; .ci/run installs them).
    #[test]
    fn talks_to_a_real_message_bus() {
        use std::process::{Command, Stdio};
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("bus");
        struct Kill(std::process::Child);
        impl Drop for Kill {
            fn drop(&mut self) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
        let _daemon = Kill(
            Command::new("dbus-daemon")
                .args(["--session", "--nofork", "--nopidfile", &format!("--address=unix:path={}", sock.display())])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("dbus-daemon (apt-get install dbus-daemon)"),
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sock.exists() {
            assert!(Instant::now() < deadline, "dbus-daemon did not make its socket");
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut c = Connection::open(&sock, true, Duration::from_secs(5)).unwrap();
        let bus = |member: &'static str, args: Vec<Value>| Call {
            destination: Some("org.freedesktop.DBus"),
            path: "/org/freedesktop/DBus",
            interface: "org.freedesktop.DBus",
            member,
            args,
        };
        let names = c.call(&bus("ListNames", vec![])).unwrap();
        let Some(Value::Array(sig, names)) = names.first() else { panic!("{names:?}") };
        assert_eq!(sig, "s");
        assert!(names.iter().any(|n| n.as_str() == Some("org.freedesktop.DBus")), "{names:?}");
        // An error reply is an error, with the bus's name for it.
        match c.call(&bus("NoSuchMethod", vec![Value::U32(1)])) {
            Err(DbusError::Remote(name, _)) => assert!(name.starts_with("org.freedesktop.DBus.Error."), "{name}"),
            other => panic!("{other:?}"),
        }
        // A matched signal from another client arrives; others do not.
        c.call(&bus("AddMatch", vec![Value::Str("type='signal',interface='org.husk.Test'".into())])).unwrap();
        for (member, arg) in [("Other", "x"), ("Done", "y"), ("Done", "z")] {
            let st = Command::new("dbus-send")
                .args([&format!("--bus=unix:path={}", sock.display()), "--type=signal", "/org/husk", &format!("org.husk.Test.{member}"), &format!("string:{arg}")])
                .status()
                .expect("dbus-send (apt-get install dbus-bin)");
            assert!(st.success());
        }
        let got = c.wait_signal("Done", Duration::from_secs(5), |b| b.first().and_then(Value::as_str) == Some("z")).unwrap();
        assert_eq!(got, vec![Value::Str("z".into())]);
        // Nothing more comes: the wait is bounded.
        let t = Instant::now();
        assert!(matches!(c.wait_signal("Never", Duration::from_millis(300), |_| true), Err(DbusError::Timeout(_))));
        assert!(t.elapsed() < Duration::from_secs(3));
    }
}
