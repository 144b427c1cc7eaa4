//! Shared helpers.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

/// The binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rampart"))
}

/// Environment for a test process: JSON logs, everything else explicit.
pub fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    env.entry("RAMPART_LOGGING_FORMAT".to_owned())
        .or_insert_with(|| "json".to_owned());
    env
}

/// Writes a file with the given mode.
pub fn write(path: &Path, content: &str, mode: u32) {
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A fresh random hex string (distinctive, so a grep for it cannot match by chance).
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

fn getrandom(buf: &mut [u8]) {
    use std::io::Read as _;
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(buf)
        .unwrap();
}

/// A minimal production config on a loopback port chosen by the OS.
pub fn production_config(dir: &Path, extra: &str) -> PathBuf {
    let key = dir.join("master.key");
    if !key.exists() {
        write(&key, &random_hex(32), 0o600);
    }
    let path = dir.join("rampart.toml");
    let text = format!(
        r#"mode = "production"
data_dir = "{data}"
master_key_path = "{key}"

[server]
listen = "127.0.0.1:0"

[metrics]
enabled = false
{extra}
"#,
        data = dir.join("data").display(),
        key = key.display(),
    );
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}
