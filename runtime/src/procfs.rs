//! The few /proc reads on husk's hot paths (`state`, `list`, `kill`).
//! Only two fields of /proc/PID/stat are needed, so they are parsed here
//! rather than through a general procfs library.

pub struct ProcStat {
    pub state: char,
    pub start_time: u64,
}

pub fn proc_stat(pid: i32) -> Option<ProcStat> {
    let raw = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&raw)
}

fn parse_stat(raw: &str) -> Option<ProcStat> {
    // comm (field 2) may hold spaces and parentheses: fields resume after
    // the last ')'.
    let rest = &raw[raw.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    // state is field 3; starttime is field 22.
    let start_time = fields.nth(22 - 4)?.parse().ok()?;
    Some(ProcStat { state, start_time })
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_comm_with_parens_and_spaces() {
        let raw = "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10 0";
        let st = super::parse_stat(raw).unwrap();
        assert_eq!(st.state, 'S');
        assert_eq!(st.start_time, 98765);
    }

    #[test]
    fn own_process_is_readable() {
        let st = super::proc_stat(std::process::id() as i32).unwrap();
        assert!(st.start_time > 0);
        assert!(super::proc_stat(i32::MAX).is_none());
    }
}
