//! The messages of CRIU's `rpc.proto` (proto2) that husk sends and reads,
//! in protobuf's wire format: a request is encoded (varints and
//! length-delimited fields), a reply decoded, skipping the fields husk
//! does not read. Field numbers are rpc.proto's, quoted as `= N`.
//!
//! As protobuf encodes a proto2 message, a field is written only when it is
//! set (`Some`, a non-empty list), required ones always, in the order
//! rpc.proto declares them.

/// A malformed reply from CRIU.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    #[error("truncated message")]
    Truncated,
    #[error("varint longer than 10 bytes")]
    Varint,
    #[error("invalid field tag {0}")]
    Tag(u64),
    #[error("unsupported wire type {0}")]
    WireType(u64),
    #[error("field {0} has the wrong wire type")]
    WrongType(u64),
    #[error("required field {0} missing")]
    Missing(&'static str),
    #[error("unknown request type {0}")]
    ReqType(u64),
}

/// `enum criu_req_type`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum ReqType {
    #[default]
    Empty = 0,
    Dump = 1,
    Restore = 2,
    Check = 3,
    PreDump = 4,
    PageServer = 5,
    Notify = 6,
    CpuinfoDump = 7,
    CpuinfoCheck = 8,
    FeatureCheck = 9,
    Version = 10,
    WaitPid = 11,
    PageServerChld = 12,
    SinglePreDump = 13,
}

impl ReqType {
    fn from_wire(v: u64) -> Result<ReqType, RpcError> {
        use ReqType::*;
        const ALL: [ReqType; 14] =
            [Empty, Dump, Restore, Check, PreDump, PageServer, Notify, CpuinfoDump, CpuinfoCheck, FeatureCheck, Version, WaitPid, PageServerChld, SinglePreDump];
        ALL.into_iter().find(|t| *t as u64 == v).ok_or(RpcError::ReqType(v))
    }
}

/// `enum criu_cg_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgMode {
    Ignore = 0,
    CgNone = 1,
    Props = 2,
    Soft = 3,
    Full = 4,
    Strict = 5,
    Default = 6,
}

/// `message criu_req`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Req {
    /// `required criu_req_type type = 1`
    pub ty: ReqType,
    /// `optional criu_opts opts = 2`
    pub opts: Option<Opts>,
    /// `optional bool notify_success = 3`
    pub notify_success: Option<bool>,
}

/// `message criu_opts`: the options husk sets.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Opts {
    /// `required int32 images_dir_fd = 1 [default = -1]`
    pub images_dir_fd: Option<i32>,
    /// `optional int32 pid = 2`
    pub pid: Option<i32>,
    /// `= 3`
    pub leave_running: Option<bool>,
    /// `= 4`
    pub ext_unix_sk: Option<bool>,
    /// `= 5`
    pub tcp_established: Option<bool>,
    /// `= 6`
    pub evasive_devices: Option<bool>,
    /// `= 7`
    pub shell_job: Option<bool>,
    /// `= 8`
    pub file_locks: Option<bool>,
    /// `optional int32 log_level = 9`
    pub log_level: Option<i32>,
    /// `optional string log_file = 10`
    pub log_file: Option<String>,
    /// `optional criu_page_server_info ps = 11`
    pub ps: Option<PageServerInfo>,
    /// `= 12`
    pub notify_scripts: Option<bool>,
    /// `optional string root = 13`
    pub root: Option<String>,
    /// `optional string parent_img = 14`
    pub parent_img: Option<String>,
    /// `= 15`
    pub track_mem: Option<bool>,
    /// `= 16`
    pub auto_dedup: Option<bool>,
    /// `optional int32 work_dir_fd = 17`
    pub work_dir_fd: Option<i32>,
    /// `repeated ext_mount_map ext_mnt = 23`
    pub ext_mnt: Vec<ExtMount>,
    /// `= 24`
    pub manage_cgroups: Option<bool>,
    /// `repeated cgroup_root cg_root = 25`
    pub cg_root: Vec<CgroupRoot>,
    /// `= 26`
    pub rst_sibling: Option<bool>,
    /// `repeated inherit_fd inherit_fd = 27`
    pub inherit_fd: Vec<InheritFd>,
    /// `optional criu_cg_mode manage_cgroups_mode = 34`
    pub manage_cgroups_mode: Option<CgMode>,
    /// `repeated string external = 37`
    pub external: Vec<String>,
    /// `optional uint32 empty_ns = 38`
    pub empty_ns: Option<u32>,
    /// `optional string freeze_cgroup = 44`
    pub freeze_cgroup: Option<String>,
    /// `= 48`
    pub lazy_pages: Option<bool>,
    /// `= 50`
    pub orphan_pts_master: Option<bool>,
}

/// `message criu_page_server_info` (its `pid = 3` and `fd = 4` unused).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PageServerInfo {
    /// `optional string address = 1`
    pub address: Option<String>,
    /// `optional int32 port = 2`
    pub port: Option<i32>,
}

/// `message ext_mount_map`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ExtMount {
    /// `required string key = 1`
    pub key: String,
    /// `required string val = 2`
    pub val: String,
}

/// `message cgroup_root`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CgroupRoot {
    /// `optional string ctrl = 1`
    pub ctrl: Option<String>,
    /// `required string path = 2`
    pub path: String,
}

/// `message inherit_fd`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct InheritFd {
    /// `required string key = 1`
    pub key: String,
    /// `required int32 fd = 2`
    pub fd: i32,
}

/// `message criu_resp`: what husk reads of it (`dump = 3`, `restore = 4`,
/// `ps = 6`, `features = 8`, `version = 10`, `status = 11` are skipped).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Resp {
    /// `required criu_req_type type = 1`
    pub ty: ReqType,
    /// `required bool success = 2`
    pub success: bool,
    /// `optional criu_notify notify = 5` (default: empty)
    pub notify: Notify,
    /// `optional int32 cr_errno = 7`
    pub cr_errno: i32,
    /// `optional string cr_errmsg = 9`
    pub cr_errmsg: String,
}

/// `message criu_notify`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Notify {
    /// `optional string script = 1`
    pub script: String,
    /// `optional int32 pid = 2`
    pub pid: i32,
}

/// An encoder: each method writes one field if it is set.
#[derive(Default)]
struct Out(Vec<u8>);

impl Out {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    /// Wire type 0: int32 (a negative one sign-extended to 10 bytes, as
    /// protobuf does), uint32, bool, enum.
    fn uint(&mut self, field: u32, v: Option<u64>) {
        if let Some(v) = v {
            self.varint(u64::from(field) << 3);
            self.varint(v);
        }
    }
    fn int(&mut self, field: u32, v: Option<i32>) {
        self.uint(field, v.map(|v| i64::from(v) as u64));
    }
    fn bool(&mut self, field: u32, v: Option<bool>) {
        self.uint(field, v.map(u64::from));
    }
    /// Wire type 2: a string, or an embedded message's bytes.
    fn bytes(&mut self, field: u32, v: Option<&[u8]>) {
        if let Some(v) = v {
            self.varint(u64::from(field) << 3 | 2);
            self.varint(v.len() as u64);
            self.0.extend_from_slice(v);
        }
    }
    fn str(&mut self, field: u32, v: Option<&str>) {
        self.bytes(field, v.map(str::as_bytes));
    }
}

impl Req {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Out::default();
        w.uint(1, Some(self.ty as u64));
        w.bytes(2, self.opts.as_ref().map(Opts::encode).as_deref());
        w.bool(3, self.notify_success);
        w.0
    }
}

impl Opts {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Out::default();
        w.int(1, Some(self.images_dir_fd.unwrap_or(-1)));
        w.int(2, self.pid);
        w.bool(3, self.leave_running);
        w.bool(4, self.ext_unix_sk);
        w.bool(5, self.tcp_established);
        w.bool(6, self.evasive_devices);
        w.bool(7, self.shell_job);
        w.bool(8, self.file_locks);
        w.int(9, self.log_level);
        w.str(10, self.log_file.as_deref());
        w.bytes(11, self.ps.as_ref().map(PageServerInfo::encode).as_deref());
        w.bool(12, self.notify_scripts);
        w.str(13, self.root.as_deref());
        w.str(14, self.parent_img.as_deref());
        w.bool(15, self.track_mem);
        w.bool(16, self.auto_dedup);
        w.int(17, self.work_dir_fd);
        for m in &self.ext_mnt {
            w.bytes(23, Some(&m.encode()));
        }
        w.bool(24, self.manage_cgroups);
        for r in &self.cg_root {
            w.bytes(25, Some(&r.encode()));
        }
        w.bool(26, self.rst_sibling);
        for i in &self.inherit_fd {
            w.bytes(27, Some(&i.encode()));
        }
        w.uint(34, self.manage_cgroups_mode.map(|m| m as u64));
        for e in &self.external {
            w.str(37, Some(e));
        }
        w.uint(38, self.empty_ns.map(u64::from));
        w.str(44, self.freeze_cgroup.as_deref());
        w.bool(48, self.lazy_pages);
        w.bool(50, self.orphan_pts_master);
        w.0
    }
}

impl PageServerInfo {
    fn encode(&self) -> Vec<u8> {
        let mut w = Out::default();
        w.str(1, self.address.as_deref());
        w.int(2, self.port);
        w.0
    }
}

impl ExtMount {
    fn encode(&self) -> Vec<u8> {
        let mut w = Out::default();
        w.str(1, Some(&self.key));
        w.str(2, Some(&self.val));
        w.0
    }
}

impl CgroupRoot {
    fn encode(&self) -> Vec<u8> {
        let mut w = Out::default();
        w.str(1, self.ctrl.as_deref());
        w.str(2, Some(&self.path));
        w.0
    }
}

impl InheritFd {
    fn encode(&self) -> Vec<u8> {
        let mut w = Out::default();
        w.str(1, Some(&self.key));
        w.int(2, Some(self.fd));
        w.0
    }
}

/// A field's value as read: fixed32/64 ones are only skipped.
enum Val<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

impl<'a> Val<'a> {
    fn varint(self, field: u64) -> Result<u64, RpcError> {
        match self {
            Val::Varint(v) => Ok(v),
            _ => Err(RpcError::WrongType(field)),
        }
    }
    fn bytes(self, field: u64) -> Result<&'a [u8], RpcError> {
        match self {
            Val::Bytes(v) => Ok(v),
            _ => Err(RpcError::WrongType(field)),
        }
    }
    fn string(self, field: u64) -> Result<String, RpcError> {
        self.bytes(field).map(|b| String::from_utf8_lossy(b).into_owned())
    }
}

/// A decoder over a message's bytes.
struct In<'a>(&'a [u8]);

impl<'a> In<'a> {
    fn take(&mut self, n: u64) -> Result<&'a [u8], RpcError> {
        let n = usize::try_from(n).map_err(|_| RpcError::Truncated)?;
        if n > self.0.len() {
            return Err(RpcError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn varint(&mut self) -> Result<u64, RpcError> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.take(1)?[0];
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(RpcError::Varint)
    }
    /// The next field's number and value, `None` at the end.
    fn field(&mut self) -> Result<Option<(u64, Val<'a>)>, RpcError> {
        if self.0.is_empty() {
            return Ok(None);
        }
        let tag = self.varint()?;
        let field = tag >> 3;
        if field == 0 || field > u64::from(u32::MAX >> 3) {
            return Err(RpcError::Tag(tag));
        }
        let val = match tag & 7 {
            0 => Val::Varint(self.varint()?),
            1 => self.take(8).map(|_| Val::Fixed)?,
            2 => {
                let n = self.varint()?;
                Val::Bytes(self.take(n)?)
            }
            5 => self.take(4).map(|_| Val::Fixed)?,
            w => return Err(RpcError::WireType(w)),
        };
        Ok(Some((field, val)))
    }
}

impl Resp {
    pub fn decode(buf: &[u8]) -> Result<Resp, RpcError> {
        let mut r = In(buf);
        let mut resp = Resp::default();
        let (mut ty, mut success) = (None, None);
        while let Some((f, v)) = r.field()? {
            match f {
                1 => ty = Some(ReqType::from_wire(v.varint(f)?)?),
                2 => success = Some(v.varint(f)? != 0),
                5 => resp.notify = Notify::decode(v.bytes(f)?)?,
                7 => resp.cr_errno = v.varint(f)? as i32,
                9 => resp.cr_errmsg = v.string(f)?,
                _ => {}
            }
        }
        resp.ty = ty.ok_or(RpcError::Missing("criu_resp.type"))?;
        resp.success = success.ok_or(RpcError::Missing("criu_resp.success"))?;
        Ok(resp)
    }
}

impl Notify {
    fn decode(buf: &[u8]) -> Result<Notify, RpcError> {
        let mut r = In(buf);
        let mut n = Notify::default();
        while let Some((f, v)) = r.field()? {
            match f {
                1 => n.script = v.string(f)?,
                2 => n.pid = v.varint(f)? as i32,
                _ => {}
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// As checkpoint sends it, with every option it may set.
    fn dump() -> Req {
        Req {
            ty: ReqType::Dump,
            opts: Some(Opts {
                images_dir_fd: Some(5),
                work_dir_fd: Some(6),
                log_level: Some(4),
                log_file: Some("dump.log".into()),
                root: Some("/run/husk/c1/rootfs".into()),
                pid: Some(4242),
                manage_cgroups: Some(true),
                manage_cgroups_mode: Some(CgMode::Soft),
                notify_scripts: Some(true),
                shell_job: Some(false),
                leave_running: Some(true),
                tcp_established: Some(false),
                ext_unix_sk: Some(false),
                file_locks: Some(false),
                auto_dedup: Some(false),
                orphan_pts_master: Some(true),
                lazy_pages: Some(true),
                ps: Some(PageServerInfo { address: Some("127.0.0.1".into()), port: Some(27000) }),
                empty_ns: Some(libc::CLONE_NEWNET as u32),
                parent_img: Some("../pre".into()),
                track_mem: Some(true),
                freeze_cgroup: Some("/sys/fs/cgroup/husk/c1".into()),
                ext_mnt: vec![
                    ExtMount { key: "/etc/hosts".into(), val: "/etc/hosts".into() },
                    ExtMount { key: "/proc/kcore".into(), val: "/dev/null".into() },
                ],
                external: vec!["file[2a:1f3]".into()],
                ..Default::default()
            }),
            notify_success: None,
        }
    }

    /// As restore sends it; a root longer than 127 bytes (a two-byte length).
    fn restore() -> Req {
        Req {
            ty: ReqType::Restore,
            opts: Some(Opts {
                images_dir_fd: Some(5),
                work_dir_fd: Some(6),
                log_level: Some(4),
                log_file: Some("restore.log".into()),
                evasive_devices: Some(true),
                rst_sibling: Some(true),
                root: Some(format!("/run/husk/{}/criu-root", "c".repeat(150))),
                manage_cgroups: Some(true),
                manage_cgroups_mode: Some(CgMode::Full),
                notify_scripts: Some(true),
                shell_job: Some(true),
                ext_unix_sk: Some(true),
                tcp_established: Some(true),
                file_locks: Some(true),
                auto_dedup: Some(true),
                lazy_pages: Some(false),
                orphan_pts_master: Some(false),
                empty_ns: Some((libc::CLONE_NEWNET | libc::CLONE_NEWIPC) as u32),
                ext_mnt: vec![ExtMount { key: "/dev/null".into(), val: "/dev/null".into() }],
                cg_root: vec![
                    CgroupRoot { ctrl: None, path: "/husk/c1".into() },
                    CgroupRoot { ctrl: Some("cpu,cpuacct".into()), path: "/husk/c1".into() },
                ],
                inherit_fd: vec![InheritFd { key: "pipe:[12345]".into(), fd: 1 }, InheritFd { key: "file[2a:1f3]".into(), fd: -1 }],
                ..Default::default()
            }),
            notify_success: None,
        }
    }

    /// Nothing set but the type: images_dir_fd is required, its default -1
    /// a ten-byte varint.
    fn pre_dump_defaults() -> Req {
        Req { ty: ReqType::PreDump, opts: Some(Opts::default()), notify_success: None }
    }

    fn ack(ok: bool) -> Req {
        Req { ty: ReqType::Notify, opts: None, notify_success: Some(ok) }
    }

    // The bytes rust-criu 0.6.1's generated code (protobuf 3.7.2) wrote for
    // the same messages (checked against it before husk dropped it).
    const DUMP: &str = "080112c4010805109221180120002800380040004804520864756d702e6c6f675a0f0a093132372e302e302e3110f8d20160016a132f72756e2f6875736b2f63312f726f6f74667372062e2e2f7072657801800100880106ba01180a0a2f6574632f686f737473120a2f6574632f686f737473ba01180a0b2f70726f632f6b636f726512092f6465762f6e756c6cc00101900203aa020c66696c655b32613a3166335db0028080808004e202162f7379732f66732f6367726f75702f6875736b2f6331800301900301";
    const RESTORE: &str = "080212d5020805200128013001380140014804520b726573746f72652e6c6f6760016aaa012f72756e2f6875736b2f6363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363632f637269752d726f6f74800101880106ba01160a092f6465762f6e756c6c12092f6465762f6e756c6cc00101ca010a12082f6875736b2f6331ca01170a0b6370752c6370756163637412082f6875736b2f6331d00101da01100a0c706970653a5b31323334355d1001da01190a0c66696c655b32613a3166335d10ffffffffffffffffff01900204b002808080c004800300900300";
    const PRE_DUMP_DEFAULTS: &str = "0804120b08ffffffffffffffffff01";
    const ACK_TRUE: &str = "08061801";
    const ACK_FALSE: &str = "08061800";

    #[test]
    fn requests_encode_as_protobuf_does() {
        assert_eq!(hex(&dump().encode()), DUMP);
        assert_eq!(hex(&restore().encode()), RESTORE);
        assert_eq!(hex(&pre_dump_defaults().encode()), PRE_DUMP_DEFAULTS);
        assert_eq!(hex(&ack(true).encode()), ACK_TRUE);
        assert_eq!(hex(&ack(false).encode()), ACK_FALSE);
    }

    // Replies as rust-criu's code wrote them: a notification; a failure; a
    // success carrying every field husk skips (dump, restore, ps,
    // features, version, status).
    const RESP_NOTIFY: &str = "080610012a110a0c706f73742d726573746f7265109221";
    const RESP_FAILED: &str = "0801100038014a0e44756d70696e67204641494c4544";
    const RESP_SKIPPED: &str = "080210011a020801220308922132190a0831302e302e302e3110ffffffffffffffffff01184d20034204080110005216080410011a0676342e312e312001320643524953435658feffffffffffffffff01";

    #[test]
    fn replies_decode_as_protobuf_wrote_them() {
        let r = Resp::decode(&unhex(RESP_NOTIFY)).unwrap();
        let want = Resp { ty: ReqType::Notify, success: true, notify: Notify { script: "post-restore".into(), pid: 4242 }, ..Default::default() };
        assert_eq!(r, want);
        let r = Resp::decode(&unhex(RESP_FAILED)).unwrap();
        let want = Resp { ty: ReqType::Dump, success: false, cr_errno: 1, cr_errmsg: "Dumping FAILED".into(), ..Default::default() };
        assert_eq!(r, want);
        let r = Resp::decode(&unhex(RESP_SKIPPED)).unwrap();
        assert_eq!(r, Resp { ty: ReqType::Restore, success: true, ..Default::default() });
    }

    #[test]
    fn unknown_fields_of_every_wire_type_are_skipped() {
        // criu_resp + field 12 fixed64, 13 fixed32, 14 varint, 15 bytes.
        let mut b = unhex(RESP_NOTIFY);
        b.extend(unhex("6101020304050607086d0102030470ff017a03616263"));
        assert_eq!(Resp::decode(&b).unwrap().notify, Notify { script: "post-restore".into(), pid: 4242 });
    }

    /// A reply through the encoder, as CRIU would write it.
    fn encode_resp(r: &Resp) -> Vec<u8> {
        let mut n = Out::default();
        n.str(1, Some(&r.notify.script));
        n.int(2, Some(r.notify.pid));
        let mut w = Out::default();
        w.uint(1, Some(r.ty as u64));
        w.bool(2, Some(r.success));
        w.bytes(5, Some(&n.0));
        w.int(7, Some(r.cr_errno));
        w.str(9, Some(&r.cr_errmsg));
        w.0
    }

    #[test]
    fn round_trips() {
        let notify = Notify { script: "orphan-pts-master".into(), pid: -1 };
        for r in [
            Resp { ty: ReqType::Notify, success: true, notify, cr_errno: i32::MIN, cr_errmsg: "é".repeat(300) },
            Resp { ty: ReqType::SinglePreDump, success: false, cr_errno: i32::MAX, ..Default::default() },
        ] {
            assert_eq!(Resp::decode(&encode_resp(&r)), Ok(r));
        }
        // A request read back field by field.
        let req = restore().encode();
        let mut top = In(&req);
        let mut opts = None;
        while let Some((f, v)) = top.field().unwrap() {
            match f {
                1 => assert_eq!(v.varint(f), Ok(ReqType::Restore as u64)),
                2 => opts = Some(v.bytes(f).unwrap()),
                _ => panic!("field {f}"),
            }
        }
        let mut o = In(opts.unwrap());
        let (mut root, mut fds) = (String::new(), Vec::new());
        while let Some((f, v)) = o.field().unwrap() {
            match f {
                13 => root = v.string(f).unwrap(),
                27 => {
                    let mut i = In(v.bytes(f).unwrap());
                    let (_, key) = i.field().unwrap().unwrap();
                    let (_, fd) = i.field().unwrap().unwrap();
                    fds.push((key.string(1).unwrap(), fd.varint(2).unwrap() as i32));
                }
                _ => {}
            }
        }
        assert_eq!(Some(root), restore().opts.unwrap().root);
        assert_eq!(fds, [("pipe:[12345]".to_string(), 1), ("file[2a:1f3]".to_string(), -1)]);
    }

    #[test]
    fn malformed_replies_are_errors() {
        let notify = unhex(RESP_NOTIFY);
        assert_eq!(Resp::decode(&notify[..notify.len() - 1]), Err(RpcError::Truncated));
        assert_eq!(Resp::decode(&[]), Err(RpcError::Missing("criu_resp.type")));
        assert_eq!(Resp::decode(&[0x08, 0x01]), Err(RpcError::Missing("criu_resp.success")));
        assert_eq!(Resp::decode(&[0x08]), Err(RpcError::Truncated));
        assert_eq!(Resp::decode(&unhex("08ffffffffffffffffffff01")), Err(RpcError::Varint));
        assert_eq!(Resp::decode(&[0x0b]), Err(RpcError::WireType(3)));
        assert_eq!(Resp::decode(&[0x00, 0x00]), Err(RpcError::Tag(0)));
        assert_eq!(Resp::decode(&unhex("ffffffffffffffffff01")), Err(RpcError::Tag(u64::MAX)));
        assert_eq!(Resp::decode(&[0x12, 0x01, 0x00]), Err(RpcError::WrongType(2)));
        assert_eq!(Resp::decode(&[0x2a, 0x01, 0x08]), Err(RpcError::Truncated));
        assert_eq!(Resp::decode(&[0x08, 0x63, 0x10, 0x01]), Err(RpcError::ReqType(99)));
        assert_eq!(Resp::decode(&unhex("2affffffffffffffffff01")), Err(RpcError::Truncated));
        // Invalid UTF-8 in a string is kept, replaced.
        let r = Resp::decode(&unhex("080110004a02ff41")).unwrap();
        assert_eq!(r.cr_errmsg, "\u{fffd}A");
    }

    #[test]
    fn garbage_never_panics() {
        // Every prefix and every one-byte change of the replies above, and
        // pseudo-random bytes: an answer or an error, never a panic.
        let mut x = 0x9e3779b97f4a7c15u64;
        let mut rand = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for good in [RESP_NOTIFY, RESP_FAILED, RESP_SKIPPED].map(unhex) {
            for n in 0..good.len() {
                let _ = Resp::decode(&good[..n]);
                for b in [0x00, 0x01, 0x7f, 0x80, 0xff, rand() as u8] {
                    let mut bad = good.clone();
                    bad[n] = b;
                    let _ = Resp::decode(&bad);
                }
            }
        }
        for _ in 0..20000 {
            let len = rand() as usize % 48;
            let buf: Vec<u8> = (0..len).map(|_| rand() as u8).collect();
            let _ = Resp::decode(&buf);
        }
    }
}
