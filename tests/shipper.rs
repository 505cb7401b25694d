//! A real log shipper from Debian follows the active segments across rotation: rsyslog's
//! `imfile` (inotify) on `segments/*.jsonl`, writing each line as it is to a file, while the
//! plugin appends events and segments rotate every few events. Every event arrives exactly once
//! and in order. (The configuration is the one docs/shipping.md recommends.)

mod util;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

struct Rsyslog(Child);

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rsyslogd() -> Option<&'static str> {
    ["/usr/sbin/rsyslogd", "/sbin/rsyslogd"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

#[test]
fn rsyslog_imfile_gets_every_event_once_in_order_across_rotation() {
    let Some(bin) = rsyslogd() else {
        eprintln!("SKIPPED: rsyslogd not installed (apt-get install rsyslog)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let work = tmp.path().join("work");
    std::fs::create_dir_all(data.join("segments")).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    let out = tmp.path().join("out.jsonl");
    let conf = tmp.path().join("rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            r#"global(workDirectory="{work}" maxMessageSize="64k")
module(load="imfile" mode="inotify")
template(name="raw" type="string" string="%msg%\n")
input(type="imfile" File="{data}/segments/*.jsonl" Tag="audit" addMetadata="on" reopenOnTruncate="on")
action(type="omfile" file="{out}" template="raw")
"#,
            work = work.display(),
            data = data.display(),
            out = out.display()
        ),
    )
    .unwrap();
    let _daemon = Rsyslog(
        Command::new(bin)
            .arg("-n")
            .arg("-f")
            .arg(&conf)
            .arg("-i")
            .arg(tmp.path().join("rsyslog.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rsyslogd"),
    );
    std::thread::sleep(Duration::from_millis(500));
    let hook = Path::new(env!("CARGO_MANIFEST_DIR")).join("plugin/post-create");
    let total = 300;
    for i in 0..total {
        let mut c = Command::new(&hook);
        for (k, _) in std::env::vars() {
            if k.starts_with("DOKKU_") || k.starts_with("SSH_") || k == "SUDO_USER" {
                c.env_remove(k);
            }
        }
        let st = c
            .arg(format!("app{i}"))
            .env("DOKKU_AUDIT_BIN", util::bin())
            .env("DOKKU_AUDIT_DATA_DIR", &data)
            .env("DOKKU_AUDIT_SEGMENT_MAX_BYTES", "4096")
            .env("DOKKU_AUDIT_DURABILITY", "relaxed")
            .status()
            .unwrap();
        assert!(st.success());
    }
    let sealed = std::fs::read_dir(data.join("segments"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .to_string_lossy()
                .ends_with(".zst")
        })
        .count();
    assert!(sealed >= 20, "segments rotated ({sealed} sealed)");
    let deadline = Instant::now() + Duration::from_secs(20);
    let ids: Vec<u64> = loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        let ids: Vec<u64> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let v: Value = serde_json::from_str(l.trim_start())
                    .unwrap_or_else(|e| panic!("shipped line is not JSON ({e}): {l:?}"));
                v["id"].as_u64().unwrap()
            })
            .collect();
        if ids.len() >= total || Instant::now() > deadline {
            break ids;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let expected: Vec<u64> = (1..=total as u64).collect();
    assert_eq!(ids, expected, "every event exactly once, in order");
}
